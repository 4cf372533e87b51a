"""The Keras-facing tests again on Keras's JAX backend, and JAX's reproducibility across processes.

Keras fixes its backend once per process, when it is imported (this session: TensorFlow, see conftest),
so the JAX runs are subprocesses with KERAS_BACKEND=jax.
"""

import hashlib
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import random_images

from nu_keras.config import PROJECT_ROOT, RunConfig

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs the [jax] extra")

# The model (shape, seeds), the hidden read-out against numpy, collect, ablation against the Keras model,
# save and load, the backend checks; a user's model read out and ablated; a branch against a standalone model
# (weights and training curves);
# the sweep; blocks of other sizes.
PARITY_TESTS = [
    "tests/test_model.py",
    "tests/test_subject.py",  # a user's model: split, a channel's spatial mean, ablation through the tail
    "tests/test_masked_ablation.py",  # ablation inside the compiled tail against numpy copies
    "tests/test_robustness.py::test_a_branch_trained_with_others_matches_a_standalone_model_from_the_same_start",
    "tests/test_robustness.py::test_branch_zeros_curves_are_the_ones_keras_records_for_the_network_alone",
    "tests/test_robustness.py::test_every_branch_reads_its_own_seeds_data_order_and_matches_that_network_alone",
    "tests/test_dynamics.py",
    "tests/test_robustness.py::test_sweep_on_a_tiny_dataset_holds_every_per_seed_and_control_number",
    "tests/test_cluster.py::test_seed_blocks_of_other_sizes_train_the_same_networks_up_to_float_rounding",
]


def on_jax(*argv: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = os.environ | {"KERAS_BACKEND": "jax", "PYTHONPATH": path}
    return subprocess.run([sys.executable, *argv], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)


def trained_weights_digest() -> str:
    """sha256 of the weights of a small network trained two epochs on random images, with seed 3."""
    from nu_keras import model as mdl

    data = random_images()
    cfg = RunConfig(seed=3, epochs=2, batch_size=64, validation_size=200, steps_per_execution=4)
    net = mdl.build_model(cfg)
    mdl.train(net, data, cfg)
    return hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in net.get_weights())).hexdigest()


def test_model_activation_ablation_and_sweep_parity_tests_pass_on_jax():
    done = on_jax("-m", "pytest", "-q", "-p", "no:cacheprovider", *PARITY_TESTS)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 12 and not re.search(r"failed|skipped|error", summary), summary


def test_the_same_seed_gives_bit_identical_weights_in_two_jax_processes_and_others_than_tensorflow():
    code = (
        "import sys; sys.path.insert(0, 'tests'); from test_backends import trained_weights_digest as d; "
        "print(d(), 'tensorflow' in sys.modules)"
    )
    first, second = on_jax("-c", code), on_jax("-c", code)
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:]
    jax_digest, imported_tensorflow = first.stdout.strip().splitlines()[-1].split()
    assert re.fullmatch(r"[0-9a-f]{64}", jax_digest)
    assert imported_tensorflow == "False"  # seeding and training under JAX never import TensorFlow (seconds)
    assert second.stdout.strip().splitlines()[-1].split()[0] == jax_digest
    assert trained_weights_digest() != jax_digest  # this session trains on TensorFlow: its generators differ
