"""Every network reads the training images in its own order, drawn from its seed, a new one each epoch."""

from __future__ import annotations

import numpy as np
import pytest

from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError


def test_each_epoch_reads_every_training_image_once_in_a_new_order():
    from nu_keras import model as mdl

    orders = mdl.epoch_orders(seed=3, count=50, epochs=4)
    assert orders.shape == (4, 50)
    assert all(np.array_equal(np.sort(order), np.arange(50)) for order in orders)
    assert len({tuple(order) for order in orders}) == 4


def test_the_order_is_reproducible_from_the_seed_and_differs_between_seeds():
    from nu_keras import model as mdl

    np.testing.assert_array_equal(mdl.epoch_orders(3, 50, 2), mdl.epoch_orders(3, 50, 2))
    assert not np.array_equal(mdl.epoch_orders(3, 50, 2), mdl.epoch_orders(4, 50, 2))


def test_by_default_a_network_reads_in_its_own_seeds_order_and_a_fixed_data_order_seed_is_shared():
    from nu_keras import model as mdl

    assert RunConfig().data_order_seed is None
    assert [mdl.data_order_seed(RunConfig(), s) for s in (0, 7)] == [0, 7]
    assert [mdl.data_order_seed(RunConfig(data_order_seed=5), s) for s in (0, 7)] == [5, 5]


def test_the_data_order_is_part_of_what_a_cached_model_depends_on():
    assert RunConfig().training_fields()["data_order_seed"] is None
    assert RunConfig(data_order_seed=0).training_fields() != RunConfig().training_fields()


def test_a_negative_data_order_seed_is_refused_in_one_line():
    with pytest.raises(NuKerasError, match="data_order_seed"):
        RunConfig(data_order_seed=-1)


def test_the_reports_sweep_is_ten_seeds_trained_as_one_block():
    cfg = RunConfig()
    assert cfg.sweep_seeds == 10 and cfg.report_block() == cfg.sweep_seed_list() == list(range(10))
