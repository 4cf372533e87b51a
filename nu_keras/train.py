"""The train stage: train the paper's network, or check and copy a user's model instead.

data -> model.keras, train.json (history, test accuracy, data source, subject, versions), branches.npz (the
sweep's first block, trained in the same fit) and epochs.npz (the layer at every epoch). Keras is imported
inside the functions that need it: the run loop reads this module to list the stages.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager

from nu_keras import artifacts
from nu_keras.config import RunConfig
from nu_keras.data import Dataset, dataset
from nu_keras.errors import NuKerasError

log = logging.getLogger(__name__)


def run(cfg: RunConfig) -> None:
    """Train the paper's network as branch 0 of the sweep's first block (`RunConfig.report_block`), so
    one fit serves the report and the sweep; the block is kept for the sweep stage (branches.npz)."""
    if not cfg.trains_here:
        return adopt_model(cfg)
    from nu_keras import model as mdl  # Keras is imported only by the stages that need it
    from nu_keras import subject

    data = dataset(cfg)
    check_paper_data(data)
    block = cfg.report_block()
    log.info(
        "training %d epochs, batch %d, Adam %g, seed %d on %s, beside seeds %s of the sweep",
        cfg.epochs,
        cfg.batch_size,
        cfg.learning_rate,
        cfg.seed,
        data.title,
        block[1:] or "(none)",
    )
    watched = mdl.Dynamics(mdl.scale(data.x_test))
    fitted = mdl.fit_block(data, cfg, cfg.hidden_units, block, validate=True, watchers=(watched,))
    mdl.check_converged(fitted, cfg)
    net = mdl.network_with(fitted["trained"][0], cfg.seed, cfg.hidden_units)
    accuracy = mdl.evaluate(net, data)
    log.info("test accuracy %.4f after %.1f s of training", accuracy, fitted["fit_seconds"])
    paths = artifacts.paths(cfg)
    mdl.save_model(net, paths.model)
    mdl.save_block(paths.branches, fitted, block_recipe(cfg, data))
    sample = subject.first_inputs(net, data.x_test, cfg.pixels)
    described = subject.describe(net, subject.PAPER_LAYER, data.image_shape, True, None, sample)
    fit = {"history": fitted["history"], "fit_seconds": fitted["fit_seconds"], "trained_with": block}
    artifacts.write_npz(paths.epochs, **watched.arrays())  # branch 0 on the test images, epoch 0 to the last
    write_record(cfg, data, fit | {"test_accuracy": accuracy}, net, described)


def check_paper_data(data: Dataset) -> None:
    """The paper's network takes 28x28 grey images of 10 classes; other data need the user's own model."""
    if data.image_shape != (28, 28) or data.classes != 10:
        raise NuKerasError(
            f"the paper's network takes 28x28 grey images of 10 classes, but {data.title} has "
            f"{data.classes} classes of shape {data.image_shape}; give --model and --layer to analyse your own model"
        )


def block_recipe(cfg: RunConfig, data: Dataset) -> dict:
    """What a fitted block's weights depend on: the sweep reuses the train stage's block only if it matches."""
    return {"training": cfg.training_fields(), "data_sha256": data.sha256}


@contextmanager
def users_model_runs(cfg: RunConfig):
    """A user's model that fails when run on the data (a name TensorFlow refuses as a scope, an op the
    backend lacks) is one line naming the model; our own network's failures stay tracebacks (bugs)."""
    try:
        yield
    except (ValueError, TypeError, RuntimeError, NotImplementedError) as exc:
        if cfg.trains_here:
            raise
        reason = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())[:240]  # Keras colours its messages
        raise NuKerasError(f"--model {cfg.model} failed to run on the data ({type(exc).__name__}: {reason})") from exc


def adopt_model(cfg: RunConfig) -> None:
    """A user's model instead of training: checked against the data and copied into the artifacts."""
    from nu_keras import subject

    data = dataset(cfg)
    with users_model_runs(cfg):
        model, accuracy = subject.adopt(cfg.model, cfg.layer, data, cfg.pixels, artifacts.paths(cfg).model)
        sample = subject.first_inputs(model, data.x_test, cfg.pixels)
        described = subject.describe(model, cfg.layer, data.image_shape, False, cfg.model, sample)
    log.info(
        "model %s: test accuracy %.4f on %s; layer %s, %d %s units",
        cfg.model,
        accuracy,
        data.title,
        cfg.layer,
        described["units"],
        described["layer_kind"],
    )
    no_training = {"history": None, "fit_seconds": None, "test_accuracy": accuracy}
    write_record(cfg, data, no_training, model, described)


def check_user_model(cfg: RunConfig) -> None:
    """Before any folder is touched: the model loads safely and --layer names a layer that can be read
    out (without --layer, the error lists them: the way to discover them)."""
    from nu_keras import subject

    model = subject.load_user_model(cfg.model)
    subject.check_one_input_one_output(model)
    subject.split(model, subject.requested_layer(model, cfg.layer).name)  # refuses a layer a skip connection bypasses


def write_record(cfg: RunConfig, data: Dataset, fit: dict, model, described: dict) -> None:
    """train.json: the fit (or its absence), the data and subject as the pages describe them, the versions."""
    from nu_keras import model as mdl
    from nu_keras import subject

    artifacts.write_json(
        artifacts.paths(cfg).train,
        {
            **fit,
            "data_source": data.source,
            "data_sha256": data.sha256,
            "dataset": data.describe(cfg.pixels) | {"input_note": described.pop("input_note")},
            "subject": described,
            "versions": mdl.versions(),
            "config": cfg.training_fields(),
            "parameters": int(model.count_params()),
            "summary": subject.layer_table(model),
        },
    )


def load_subject_model(cfg: RunConfig):
    """model.keras as the train stage left it, checked: the paper's network must be the one the pages
    describe; a user's model is loaded with safe_mode like any file we did not write."""
    from nu_keras import model as mdl
    from nu_keras import subject

    path = artifacts.paths(cfg).model
    if cfg.trains_here:
        net = mdl.load_model(path)
        mdl.check_network(net, cfg, path)
        return net, subject.PAPER_LAYER
    return subject.load_user_model(path), cfg.layer
