"""The paper's network: 28x28 image -> Flatten -> Dense(10, relu) "hidden" -> Dense(10, softmax)."""

from __future__ import annotations

import json
import logging
import platform
import random
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from nu_keras import artifacts
from nu_keras.config import RunConfig
from nu_keras.data import Dataset, pixels_for_model
from nu_keras.errors import NuKerasError

log = logging.getLogger(__name__)


def require_backend(backend: str) -> None:
    """Keras picks its backend once, at import: a run asking for another one must not train silently on it."""
    if keras.backend.backend() != backend:
        raise NuKerasError(
            f"Keras was imported with the {keras.backend.backend()} backend but this run asks for {backend}; "
            f"start a new process with --backend {backend} (or KERAS_BACKEND={backend})"
        )


def build_model(cfg: RunConfig) -> keras.Sequential:
    """784-10-10 with named layers so the hidden layer can be read out later (7,960 parameters)."""
    require_backend(cfg.backend)
    model = network(cfg.seed, cfg.hidden_units)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=cfg.steps_per_execution,
    )
    return model


def set_random_seed(seed: int) -> None:
    """`keras.utils.set_random_seed`, except that under JAX it does not import TensorFlow (several seconds)
    just to seed it: there the batch order comes from NumPy's generator and the initial weights from
    the initializers' own seeds (see `network`), so Python's and NumPy's generators are all that matter."""
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)  # TensorFlow's seed sets the order of `fit`'s shuffle there
    else:
        random.seed(seed)
        np.random.seed(seed)


def network(seed: int, width: int) -> keras.Sequential:
    """The uncompiled 784-width-10 network; its initial weights depend on the seed alone.

    The kernels' initializer seeds are the two draws Keras itself would take from Python's `random`
    after `set_random_seed(seed)`, so the weights are the same, but drawn from a private generator:
    other threads of the process (a Dask worker's) also draw from the global one.
    """
    set_random_seed(seed)
    draws = random.Random(seed)
    hidden_seed, output_seed = draws.randint(1, int(1e9)), draws.randint(1, int(1e9))
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28), name="image"),
            layers.Flatten(name="flatten"),
            layers.Dense(
                width,
                activation="relu",
                name="hidden",
                kernel_initializer=keras.initializers.GlorotUniform(seed=hidden_seed),
            ),
            layers.Dense(
                10,
                activation="softmax",
                name="output",
                kernel_initializer=keras.initializers.GlorotUniform(seed=output_seed),
            ),
        ],
        name="nu_keras_mlp",
    )


class TrainingImages(layers.Layer):
    """Holds the training images (M, 784) float32 and hands each branch its own: (B, N) image indices in,
    (N, B, 784) images out, branch-major so each branch's product is one plain matrix product.

    The images stay in the model, so a step's N batches are gathered where they are used and never copied
    through the input pipeline (ten branches' batches in float32 are 1.9 GB per epoch of MNIST).
    """

    def __init__(self, images: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.images = self.add_weight(shape=images.shape, initializer="zeros", trainable=False, name="images")
        self.images.assign(images)

    def call(self, indices):
        # The indices arrive as float32 (exact below 2**24 images) and are transposed as floats: TensorFlow's
        # oneDNN transpose of an integer tensor prints a native warning on CPUs without AVX-512.
        return keras.ops.take(self.images, keras.ops.cast(keras.ops.transpose(indices), "int32"), axis=0)


class BranchDense(layers.Layer):
    """N Dense layers side by side: (N, B, I) -> (N, B, J) with a kernel (N, I, J) and a bias (N, 1, J)."""

    def __init__(self, branches: int, inputs: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.kernel = self.add_weight(shape=(branches, inputs, units), initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(branches, 1, units), initializer="zeros", name="bias")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) + self.bias


def build_branches(
    cfg: RunConfig, seeds: list[int], width: int, images: np.ndarray, curves: bool = False
) -> keras.Model:
    """N independent 784-width-10 networks as one model over a seed axis, trained in one pass.

    Branch n starts from exactly the initial weights `network(seeds[n], width)` has; the loss is the sum of
    the branches' losses, so each branch's gradient is its own loss's gradient, and Adam (elementwise)
    updates each branch as if it were trained alone. Each branch reads its own images: the input is a
    (B, N) table of indices into `images` (M, 784), the scaled training images (`fit_branches`).
    """
    require_backend(cfg.backend)
    inits = [dense_weights(network(seed, width)) for seed in seeds]
    n = len(seeds)
    indices = keras.Input(shape=(n,), dtype="float32", name="image_indices")  # (B, N) whole numbers
    flat = TrainingImages(images, name="images")(indices)  # (N, B, 784)
    hidden = layers.ReLU(name="hidden")(BranchDense(n, flat.shape[-1], width, name="hidden_pre")(flat))  # (N, B, W)
    logits = BranchDense(n, width, 10, name="output_pre")(hidden)  # (N, B, 10)
    output = layers.Softmax(axis=-1, name="output")(keras.ops.transpose(logits, (1, 0, 2)))  # (B, N, 10)
    model = keras.Model(indices, output, name=f"branches_w{width}")
    for layer, key in (("hidden_pre", "hidden"), ("output_pre", "output")):
        kernel = np.stack([w[f"{key}_kernel"] for w in inits])
        model.get_layer(layer).set_weights([kernel, np.stack([w[f"{key}_bias"] for w in inits])[:, None, :]])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss=summed_branch_loss,
        # branch 0's training curves, where they are drawn (they only read the outputs: the same training)
        metrics=[first_branch_loss, first_branch_accuracy] if curves else None,
        steps_per_execution=cfg.steps_per_execution,
    )
    return model


def summed_branch_loss(y_true, y_pred):
    """(B,) sum over branches of each branch's cross-entropy on its own labels (B, N); Keras then averages
    over the batch."""
    labels = keras.ops.cast(y_true, "int32")  # (B, N)
    per_branch = keras.losses.sparse_categorical_crossentropy(labels, y_pred)  # (B, N)
    return keras.ops.sum(per_branch, axis=1)


def first_branch_loss(y_true, y_pred):
    """(B,) cross-entropy of branch 0 alone: the loss curve `train` would record for that network."""
    return keras.losses.sparse_categorical_crossentropy(y_true[:, 0], y_pred[:, 0, :])


def first_branch_accuracy(y_true, y_pred):
    """(B,) whether branch 0 classifies each image right: the accuracy curve of that network."""
    return keras.metrics.sparse_categorical_accuracy(y_true[:, 0], y_pred[:, 0, :])


FIRST_BRANCH_CURVES = {"first_branch_loss": "loss", "first_branch_accuracy": "accuracy"}  # -> `train`'s keys


def branch_weights(model: keras.Model, branch: int) -> dict[str, np.ndarray]:
    """One branch's kernels and biases, shaped as `dense_weights` returns them for a network."""
    w1, b1 = model.get_layer("hidden_pre").get_weights()
    w2, b2 = model.get_layer("output_pre").get_weights()
    return {
        "hidden_kernel": w1[branch],
        "hidden_bias": b1[branch, 0],
        "output_kernel": w2[branch],
        "output_bias": b2[branch, 0],
    }


def training_images(data: Dataset, cfg: RunConfig) -> np.ndarray:
    """(n_fit, 784) float32: the images a network is fitted on, as it reads them (the held-out ones left out)."""
    n_fit = len(data.x_train) - cfg.validation_size
    return scale(data.x_train[:n_fit]).reshape(n_fit, -1)


def scale(images: np.ndarray) -> np.ndarray:
    """Pixels -> float32 in [0, 1], the input range the paper's network is trained on (uint8 / 255)."""
    return pixels_for_model(images, "unit")


def data_order_seed(cfg: RunConfig, seed: int) -> int:
    """The seed of the network's data order: its own seed unless `cfg.data_order_seed` fixes one for all."""
    return seed if cfg.data_order_seed is None else cfg.data_order_seed


def epoch_orders(seed: int, count: int, epochs: int) -> np.ndarray:
    """(epochs, count) the order in which a network reads the training images, a new permutation per epoch.

    Drawn from a generator of the network's own data-order seed, not from Keras's shuffle: the branch of
    seed s in a block and the network `train --seed s` fits alone then read the same batches.
    """
    draws = np.random.default_rng(seed)
    return np.stack([draws.permutation(count) for _ in range(epochs)])


def train(model: keras.Sequential, data: Dataset, cfg: RunConfig, validate: bool = True) -> dict:
    """Fit on the training images less the last `validation_size`, which give the curves' held-out line
    (evaluated after each epoch unless `validate` is False; the benchmark times the bare fit).

    Each epoch reads the images in that epoch's permutation (`epoch_orders`), in batches of `batch_size`.
    Returns the per-epoch history and the fit's wall time; the test set is not touched here.
    """
    n_fit = len(data.x_train) - cfg.validation_size
    x, y = scale(data.x_train[:n_fit]), data.y_train[:n_fit]
    validation = (scale(data.x_train[n_fit:]), data.y_train[n_fit:]) if cfg.validation_size and validate else None
    orders = epoch_orders(data_order_seed(cfg, cfg.seed), n_fit, cfg.epochs)
    epochs = ((x[order], y[order]) for order in orders)
    history, seconds = fit_by_epoch(model, epochs, cfg, chatty=True, validation_data=validation)
    return {"history": history, "fit_seconds": seconds}


def fit_branches(
    model: keras.Model,
    data: Dataset,
    cfg: RunConfig,
    seeds: list[int],
    validate: bool = True,
    watchers: tuple[keras.callbacks.Callback, ...] = (),
) -> dict:
    """Fit all branches at once, each on the batches, in the order, that `train` gives its seed's network.

    Each epoch's input is a (n_fit, N) table of image indices, branch n's column in its own order
    (`epoch_orders`); the model gathers the images. `watchers` are callbacks that read the weights after
    each epoch (they must not change the training). Returns branch 0's per-epoch history under the keys
    `train` uses (with the held-out images' curves, `HeldOutCurves`, unless `validate` is False) and the
    fit's wall time.
    """
    n_fit = len(data.x_train) - cfg.validation_size
    watched = cfg.validation_size and validate
    held_out = [HeldOutCurves(scale(data.x_train[n_fit:]), data.y_train[n_fit:])] if watched else []
    orders = [epoch_orders(data_order_seed(cfg, seed), n_fit, cfg.epochs) for seed in seeds]
    orders = np.stack(orders, axis=2)  # (E, n_fit, N): row i of epoch e, each branch's i-th image
    epochs = ((picks.astype(np.float32), data.y_train[picks]) for picks in orders)
    callbacks = held_out + list(watchers)
    logged, seconds = fit_by_epoch(model, epochs, cfg, chatty=bool(validate), callbacks=callbacks)
    curves = {ours: logged[key] for key, ours in FIRST_BRANCH_CURVES.items() if key in logged}
    return {"history": curves | (held_out[0].curves() if held_out else {}), "fit_seconds": seconds}


def fit_by_epoch(model: keras.Model, epochs, cfg: RunConfig, chatty: bool, **fit_args) -> tuple[dict, float]:
    """One `fit` per epoch on that epoch's (inputs, labels), in their order; the per-epoch history and the
    wall time. Keras's shuffle draws from the backend's generator, which a block's branches would share;
    here each network's order is its own. With `chatty`, Keras's line per epoch (silent under --quiet)."""
    verbose = 2 if chatty and log.isEnabledFor(logging.INFO) else 0
    progress = [EpochProgress(cfg.epochs)] if verbose else []
    history: dict[str, list[float]] = {}
    start = time.perf_counter()
    for epoch, (x, y) in enumerate(epochs):
        logged = model.fit(
            x,
            y,
            batch_size=cfg.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            verbose=verbose,
            **(fit_args | {"callbacks": fit_args.get("callbacks", []) + progress}),
        )
        for key, values in logged.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    return history, time.perf_counter() - start


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras's progress line per epoch, counting the epochs of the whole fit ("Epoch 2/10"), which
    `fit_by_epoch` runs as one `fit` per epoch."""

    def __init__(self, epochs: int):
        super().__init__()
        self.total = epochs

    def set_params(self, params):
        super().set_params(params | {"epochs": self.total})


class HeldOutCurves(keras.callbacks.Callback):
    """Branch 0's loss and accuracy on the held-out images after every epoch, in numpy from its weights.

    What Keras's `validation_data` would report for that network (cross-entropy without Keras's 1e-7
    clipping of probabilities), without a second compiled function and data pipeline per fit: that pass
    cost about a fifth of the whole fit. It only reads the weights, so the training is the same without it.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        super().__init__()
        self.images, self.labels = images.reshape(len(images), -1), labels.astype(np.int64)  # (V, 784), (V,)
        self.loss: list[float] = []
        self.accuracy: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        w = branch_weights(self.model, 0)
        hidden = np.maximum(self.images @ w["hidden_kernel"] + w["hidden_bias"], 0)
        logits = (hidden @ w["output_kernel"] + w["output_bias"]).astype(np.float64)  # (V, 10)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.loss.append(float(-log_p[np.arange(len(self.labels)), self.labels].mean()))
        self.accuracy.append(float(np.mean(logits.argmax(axis=1) == self.labels)))

    def curves(self) -> dict[str, list[float]]:
        return {"val_loss": self.loss, "val_accuracy": self.accuracy} if self.loss else {}


class Dynamics(keras.callbacks.Callback):
    """Branch 0's layer and predictions on the test images before the first step and after every epoch.

    Records arrays only (the analyze stage measures them: `dynamics.recorded_series`), and reads the weights
    only, in numpy, so the training is the same with or without it.
    """

    def __init__(self, images: np.ndarray):
        super().__init__()
        self.images = images.reshape(len(images), -1)  # (N, 784)
        self.hidden: list[np.ndarray] = []
        self.predictions: list[np.ndarray] = []

    def on_train_begin(self, logs=None):
        if not self.hidden:  # `fit_branches` calls `fit` once per epoch: only the first starts from scratch
            self.record()

    def on_epoch_end(self, epoch, logs=None):
        self.record()

    def record(self) -> None:
        w = branch_weights(self.model, 0)
        hidden = np.maximum(self.images @ w["hidden_kernel"] + w["hidden_bias"], 0)  # (N, U)
        self.hidden.append(hidden.astype(np.float32))
        self.predictions.append((hidden @ w["output_kernel"] + w["output_bias"]).argmax(axis=1).astype(np.uint8))

    def arrays(self) -> dict[str, np.ndarray]:
        """epochs.npz: `units` (E+1, N, U) float32 and `predictions` (E+1, N), epoch 0 first."""
        return {"units": np.stack(self.hidden), "predictions": np.stack(self.predictions)}


def fit_block(
    data: Dataset, cfg: RunConfig, width: int, seeds: list[int], validate: bool, watchers: tuple = ()
) -> dict:
    """Fit one block's branches: their initial and trained weights, branch 0's curves, the fit's time."""
    net = build_branches(cfg.replace(hidden_units=width), seeds, width, training_images(data, cfg), curves=validate)
    initial = [branch_weights(net, n) for n in range(len(seeds))]
    fit = fit_branches(net, data, cfg, seeds, validate=validate, watchers=watchers)
    trained = [branch_weights(net, n) for n in range(len(seeds))]
    return {"width": width, "seeds": list(seeds), "initial": initial, "trained": trained} | fit


def check_converged(fitted: dict, cfg: RunConfig) -> None:
    """One line when the report's network (branch 0) diverged: NaN or infinite weights still predict a
    class (argmax of NaN is 0), so a test accuracy near chance would be published as if it were a result."""
    trained = fitted["trained"][0]
    if all(np.isfinite(trained[key]).all() for key in BLOCK_ARRAYS):
        return
    losses = fitted["history"].get("loss", [])
    epoch = next((i + 1 for i, loss in enumerate(losses) if not np.isfinite(loss)), None)
    when = f" (the loss was {losses[epoch - 1]} after epoch {epoch})" if epoch else ""
    raise NuKerasError(
        f"training diverged: the network's weights are not finite after {cfg.epochs} epoch(s){when}; "
        f"try a lower --learning-rate than {cfg.learning_rate:g}"
    )


BLOCK_ARRAYS = ("hidden_kernel", "hidden_bias", "output_kernel", "output_bias")


def save_block(path, fitted: dict, recipe: dict) -> None:
    """A fitted block as arrays (N branches stacked), with the recipe it was trained by, for the sweep."""
    arrays = {
        f"{when}_{key}": np.stack([weights[key] for weights in fitted[when]])
        for when in ("initial", "trained")
        for key in BLOCK_ARRAYS
    }
    header = {k: fitted[k] for k in ("width", "seeds", "fit_seconds")} | {"recipe": recipe}
    artifacts.write_npz(path, header=np.array(json.dumps(header, sort_keys=True)), **arrays)


def load_block(path, recipe: dict) -> dict | None:
    """The block `save_block` wrote, if it was trained by this recipe; None when it is absent, another
    recipe's, or not readable as a block (the sweep then trains that block itself)."""
    if not path.exists():
        return None
    try:
        arrays = artifacts.read_npz(path)
        header = json.loads(str(arrays["header"]))
        if header.pop("recipe") != recipe:
            return None
        n, width = len(header["seeds"]), int(header["width"])
        shapes = {"hidden_kernel": (n, 784, width), "hidden_bias": (n, width)}
        shapes |= {"output_kernel": (n, width, 10), "output_bias": (n, 10)}
        for when in ("initial", "trained"):
            for key, shape in shapes.items():
                if arrays[f"{when}_{key}"].shape != shape:
                    raise ValueError(f"{when}_{key} has shape {arrays[f'{when}_{key}'].shape}, not {shape}")
    except (NuKerasError, KeyError, AttributeError, TypeError, ValueError) as exc:
        log.warning("%s is not a block the sweep can use (%s); it trains that block itself", path, exc)
        return None
    return header | {
        when: [{key: arrays[f"{when}_{key}"][i] for key in BLOCK_ARRAYS} for i in range(n)]
        for when in ("initial", "trained")
    }


def network_with(weights: dict[str, np.ndarray], seed: int, width: int) -> keras.Sequential:
    """The 784-width-10 network of `seed` holding the given kernels and biases (a trained branch's)."""
    model = network(seed, width)
    model.get_layer("hidden").set_weights([weights["hidden_kernel"], weights["hidden_bias"]])
    model.get_layer("output").set_weights([weights["output_kernel"], weights["output_bias"]])
    return model


def evaluate(model: keras.Sequential, data: Dataset) -> float:
    """Test accuracy computed from predictions, so it matches what the activations stage sees."""
    probabilities = model.predict(scale(data.x_test), batch_size=2048, verbose=0)
    return float(np.mean(probabilities.argmax(axis=1) == data.y_test))


def save_model(model: keras.Sequential, path: Path) -> None:
    with artifacts.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def load_model(path: Path) -> keras.Sequential:
    """Load with safe_mode=True so a model file cannot run arbitrary code (no lambda layers)."""
    path = Path(path)
    if not path.exists():
        raise NuKerasError(f"{path} does not exist; run `nu-keras train` first")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise NuKerasError(f"{path} is not a loadable Keras model ({reason}); run `nu-keras train`") from exc


def check_network(model: keras.Model, cfg: RunConfig, path: Path) -> None:
    """Refuse, in one line, a model that is not the 784-W-10 network this report describes.

    The pages name the architecture from the configuration; a model.keras of another shape (a wider
    hidden layer, no layer named "hidden", a convolution) would publish a site that says otherwise.
    """
    expected = f"the 784-{cfg.hidden_units}-10 network this report describes"
    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    problems = []
    if shape != (28, 28):
        problems.append(f"its input is {shape}, not (28, 28) images")
    names = [layer.name for layer in model.layers]
    for name, units in (("hidden", cfg.hidden_units), ("output", 10)):
        if name not in names:
            problems.append(f'it has no layer named "{name}" (layers: {", ".join(names)})')
            continue
        layer = model.get_layer(name)
        if not isinstance(layer, layers.Dense):
            problems.append(f'its "{name}" layer is a {type(layer).__name__}, not Dense')
        elif layer.units != units:
            problems.append(f'its "{name}" layer has {layer.units} units, expected {units}')
    if problems:
        raise NuKerasError(f"{path} is not {expected}: {problems[0]}; re-run `nu-keras train --force`")


def dense_weights(model: keras.Sequential) -> dict[str, np.ndarray]:
    """The two Dense layers' kernels and biases as numpy (784x10, 10, 10x10, 10 for the default)."""
    hidden, output = model.get_layer("hidden"), model.get_layer("output")
    w1, b1 = (np.asarray(w) for w in hidden.get_weights())
    w2, b2 = (np.asarray(w) for w in output.get_weights())
    return {"hidden_kernel": w1, "hidden_bias": b1, "output_kernel": w2, "output_bias": b2}


def versions() -> dict[str, str]:
    """Package versions of this process, with the backend's own (TensorFlow is not imported under JAX)."""
    backend = keras.backend.backend()
    found = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "backend": backend,
    }
    if backend == "tensorflow":
        import tensorflow as tf  # only for its version string; the model code itself uses keras only

        found["tensorflow"] = tf.__version__
    elif backend == "jax":
        import jax
        import jaxlib

        found |= {"jax": jax.__version__, "jaxlib": jaxlib.__version__}
    return found
