"""The seed sweep in blocks: on a Dask LocalCluster (127.0.0.1) it equals the in-process sweep bit for bit,
and blocks of other sizes train the same networks up to float rounding."""

import logging

import numpy as np
import pytest

from nu_keras import model as mdl
from nu_keras.config import RunConfig
from nu_keras.data import Dataset
from nu_keras.sweep import seed_blocks, train_and_measure


def prototype_digits(seed: int = 0) -> Dataset:
    """600 training and 200 test images: a fixed random prototype per digit plus noise (learnable fast)."""
    rng = np.random.default_rng(seed)
    y_train = np.tile(np.arange(10, dtype=np.uint8), 60)
    y_test = np.tile(np.arange(10, dtype=np.uint8), 20)
    prototypes = rng.integers(0, 256, size=(10, 28, 28))
    x_train = np.clip(prototypes[y_train] + rng.normal(0, 30, size=(600, 28, 28)), 0, 255).astype(np.uint8)
    x_test = np.clip(prototypes[y_test] + rng.normal(0, 30, size=(200, 28, 28)), 0, 255).astype(np.uint8)
    return Dataset(x_train, y_train, x_test, y_test, source="synthetic prototypes")


def untimed(value):
    """The sweep without its wall times, the only values that may differ between two runs."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not k.endswith("_seconds")}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def test_seeds_split_into_consecutive_blocks():
    assert seed_blocks([3, 4, 5, 6, 7, 8, 9], 3) == [[3, 4, 5], [6, 7, 8], [9]]
    assert seed_blocks([0, 1], 10) == [[0, 1]]


def test_a_sweep_on_a_local_dask_cluster_equals_the_in_process_sweep(caplog):
    pytest.importorskip("distributed")
    data = prototype_digits()
    cfg = RunConfig(
        epochs=1,
        batch_size=32,
        validation_size=100,
        steps_per_execution=4,
        sweep_seeds=2,
        sweep_widths=(10,),
        sweep_block_seeds=1,
    )
    here = train_and_measure(data, cfg)
    with caplog.at_level(logging.INFO, logger="nu_keras.cluster"):
        there = train_and_measure(data, cfg.replace(scheduler="local:2"))
    assert "Dask: 2 workers at tcp://127.0.0.1:" in caplog.text
    assert caplog.text.count("on a worker") == 2  # one task per block, each trained in a worker process
    assert there["widths"]["10"]["blocks"] == [[0], [1]]
    assert untimed(there) == untimed(here)  # every per-seed, control and summary number, bit for bit
    assert there["provenance"]["backend"] == cfg.backend


def test_seed_blocks_of_other_sizes_train_the_same_networks_up_to_float_rounding():
    """Not bit for bit: the einsum over a block of 3 sums in another order than over a block of 1."""
    data = prototype_digits()
    cfg = RunConfig(epochs=2, batch_size=32, validation_size=100, steps_per_execution=4)
    together = mdl.build_branches(cfg, [0, 1, 2], 10, mdl.training_images(data, cfg))
    mdl.fit_branches(together, data, cfg, [0, 1, 2])
    alone = mdl.build_branches(
        cfg, [1], 10, mdl.training_images(data, cfg)
    )  # a block of one: the middle seed of the block of three
    mdl.fit_branches(alone, data, cfg, [1])
    for key, value in mdl.branch_weights(alone, 0).items():
        np.testing.assert_allclose(mdl.branch_weights(together, 1)[key], value, rtol=0, atol=1e-5, err_msg=key)
