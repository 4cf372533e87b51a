"""What is analysed: a trained Keras 3 classifier and the one layer whose units are read out.

The paper's network trained here is one subject (its layer "hidden"); a user's model file plus a layer name
is another. Both reach the same numbers through the same three pieces: a *head* (input -> the layer), a
*tail* (the layer -> the class probabilities), and a reduction of the layer's output to one value per
unit. A Dense layer's units are its outputs; a convolutional layer's units are its channels, each read as
its spatial mean (the spatial maximum is kept beside it). Ablating a unit replaces it in the layer's output
and runs the tail, so the rest of the model decides what that unit was worth.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from nu_keras import artifacts
from nu_keras.config import ALL_LAYERS, MAX_OFFERED_UNITS, parse_layers
from nu_keras.data import Dataset, pixels_for_model
from nu_keras.errors import NuKerasError
from nu_keras.names import shown
from nu_keras.stack import ACTIVATIONS, LAST_ACTIVATIONS, check_stack, forward

PAPER_LAYER = "hidden"  # the paper network's read-out layer
BATCH = 2048  # images per forward pass: bounds memory by one batch of the layer's full output
PASS_THROUGH = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Dropout)  # no weights at inference
CHECKED_IMAGES = 64  # test images the model is first run on: finite outputs, and Explore's forward pass checked
EXPLORE_TOLERANCE = 1e-4  # largest difference allowed between Explore's outputs and the model's own (relative beyond 1)


SEVERAL_LAYERS = "this reads one layer (the command line reads several with --layer a,b or --layer all)"
# Layers that return their input unchanged at inference: their output is their parent's, shown once
IDENTITY_AT_INFERENCE = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
    keras.layers.Identity,
)
# Layers that only apply an activation: a linear layer before one of them is read after it
ACTIVATION_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
)


@dataclass(frozen=True)
class Readable:
    """A layer whose output can be read as units: (N, U) for dense, (N, H, W, U) for convolutional."""

    name: str
    kind: str  # "dense" or "conv"
    units: int
    output: bool = False  # the model's output layer: its logits or probabilities are its units
    note: str | None = None  # what the listing says besides its size (e.g. "conv2d after its relu")
    # A Flatten of a readable layer's maps: that layer's values, read position by position (a unit per pixel of
    # every map); read only when named, as `all` reads the maps' layer itself
    flat_maps: bool = False

    @property
    def large(self) -> bool:
        """More units than MAX_OFFERED_UNITS: listed with its size, read only when named (`all` skips it)."""
        return self.units > MAX_OFFERED_UNITS

    def listed(self) -> str:
        extra = [f"{self.units:,} {self.kind} units"]
        extra += ["the output"] if self.output else []
        extra += [self.note] if self.note else []
        return f"{shown(self.name)} ({', '.join(extra)})"


@dataclass(frozen=True)
class Folded:
    """A layer whose output is another readable layer's at inference: shown once, as that layer."""

    name: str
    into: str  # the readable layer it is shown as
    why: str  # e.g. "dropout = flatten at inference"


@dataclass(frozen=True)
class Survey:
    """Every layer of a model sorted for --layer: readable (offered, or large), folded, or not readable."""

    readable: tuple[Readable, ...]
    folded: tuple[Folded, ...]
    unreadable: dict  # layer name -> why it cannot be read out

    @property
    def offered(self) -> tuple[Readable, ...]:
        return tuple(r for r in self.readable if not r.large and not r.flat_maps)

    def listing(self) -> str:
        """One line's worth: what is offered, what only by name, and what is shown once as what."""
        parts = ["offered: " + (", ".join(r.listed() for r in self.offered) or "none")]
        large = [r for r in self.readable if r.large]
        if large:
            items = ", ".join(r.listed() for r in large)
            parts.append(f"only by name (more than {MAX_OFFERED_UNITS} units): {items}")
        flat = [r for r in self.readable if r.flat_maps and not r.large]
        if flat:
            items = ", ".join(r.listed() for r in flat)
            parts.append(f"only by name (the values of the maps they lay flat, one unit per position): {items}")
        if self.folded:
            parts.append("shown once: " + ", ".join(f.why for f in self.folded))
        return "; ".join(parts)


# ------------------------------------------------------------------------------------------ the model


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of every HDF5 file: a legacy Keras (.h5) model
ZIP_SIGNATURE = b"PK\x03\x04"  # the first bytes of a zip archive: a Keras 3 (.keras) model


def model_format(path: Path) -> str:
    """ "keras" (a zip archive) or "h5" (an HDF5 file), read from the file's first bytes, not its name: a
    `.keras` name on HDF5 bytes (a renamed legacy model) is still HDF5; anything else is one line."""
    with open(path, "rb") as handle:
        head = handle.read(len(HDF5_SIGNATURE))
    if head.startswith(ZIP_SIGNATURE):
        return "keras"
    if head == HDF5_SIGNATURE:
        return "h5"
    raise NuKerasError(f"--model {path} is neither a Keras 3 .keras file (a zip archive) nor a legacy .h5 (HDF5) model")


def load_user_model(path: Path) -> keras.Model:
    """A `.keras` model, or a legacy `.h5` one through Keras's legacy loader, with safe_mode=True (Keras applies
    it to both): a Lambda layer or an unknown custom object is refused in one line, and never executed."""
    path = Path(path)
    if not path.is_file():
        raise NuKerasError(f"--model {path} is not a file")
    legacy = model_format(path) == "h5"
    try:
        if legacy:
            return _load_h5(path)
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras reports unsafe lambdas and unknown classes as several exception types
        reason = " ".join(str(exc).split())[:240]
        kind = "a legacy .h5 model Keras 3 can load" if legacy else "a Keras 3 model"
        raise NuKerasError(f"--model {path} was refused or is not {kind} ({reason})") from exc


def _load_h5(path: Path) -> keras.Model:
    """Keras chooses its legacy HDF5 loader by the file's name: a renamed one is read through a `.h5` link."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    with tempfile.TemporaryDirectory(prefix="nu-keras-h5-") as folder:
        link = Path(folder) / "model.h5"
        link.symlink_to(path.resolve())
        return keras.saving.load_model(link, safe_mode=True, compile=False)


def save_adopted(model: keras.Model, path: Path, target: Path) -> None:
    """The user's model as a real `.keras` file in the artifacts: a `.keras` file copied byte for byte, a
    legacy `.h5` model saved anew in the Keras 3 format (what every later stage loads)."""
    with artifacts.atomic_path(target, suffix=".keras") as tmp:
        if model_format(path) == "keras":
            shutil.copyfile(path, tmp)
        else:
            model.save(tmp)


def survey(model: keras.Model) -> Survey:
    """The model's layers, input to output, as --layer sees them (see `Survey`).

    A layer is readable when its output is (N, U) or (N, H, W, U). Among those, one that returns its parent's
    output at inference (Dropout), a Flatten of an (N, U) layer, and a linear layer whose only reader is an
    activation layer (its units are read after the activation) are folded into the layer they equal.
    """
    parents, readers = _parents(model), _readers(model)
    output = _output_layer_name(model)
    readable, folded, unreadable, shown_as = [], [], {}, {}
    for layer in model.layers:
        shape = tuple(layer.output.shape) if hasattr(layer, "output") else ()
        parent = parents.get(layer.name, [])
        if isinstance(layer, keras.layers.InputLayer):
            unreadable[layer.name] = "it is the model's input: its pixels are not units"
        elif len(shape) not in (2, 4) or shape[-1] is None:
            unreadable[layer.name] = f"its output {shape} is neither (N, units) nor (N, H, W, channels)"
        elif fold := _fold(layer, parent, shown_as, readers, model):
            shown_as[layer.name] = fold.into
            folded.append(fold)
        else:
            shown_as[layer.name] = layer.name
            kind = "dense" if len(shape) == 2 else "conv"
            note = _note(layer, parent, model)
            flat_maps = _flat_maps(layer, parent, shown_as, model)
            readable.append(Readable(layer.name, kind, int(shape[-1]), layer.name == output, note, flat_maps))
    return Survey(tuple(readable), tuple(folded), unreadable)


def _fold(layer, parent: list[str], shown_as: dict[str, str], readers: dict[str, list[str]], model) -> Folded | None:
    """How `layer` is shown once, as another readable layer, or None: an identity at inference or a Flatten of
    an (N, U) layer is its parent (as that is shown); a linear layer activated by its one reader is that reader."""
    into = shown_as.get(parent[0]) if len(parent) == 1 else None
    if into and (isinstance(layer, IDENTITY_AT_INFERENCE) or _flat_copy(layer, model, parent[0])):
        kind = type(layer).__name__
        said = "" if kind.lower() in layer.name.lower() else f" (a {kind})"
        return Folded(layer.name, into, f"{shown(layer.name)} = {shown(into)} at inference{said}")
    if _activated_later(layer, readers, model):
        after = readers[layer.name][0]
        return Folded(layer.name, after, f"{shown(layer.name)} is read after its activation, as {shown(after)}")
    return None


def _parents(model: keras.Model) -> dict[str, list[str]]:
    """Each layer's name -> the names of the layers whose outputs it reads (in a Sequential model, the one before)."""
    if isinstance(model, keras.Sequential):
        names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        return {name: names[i - 1 : i] for i, name in enumerate(names)}
    found = {}
    for layer in model.layers:
        nodes = getattr(layer, "_inbound_nodes", [])
        tensors = nodes[0].input_tensors if nodes else []
        found[layer.name] = [t._keras_history.operation.name for t in tensors if hasattr(t, "_keras_history")]
    return found


def _readers(model: keras.Model) -> dict[str, list[str]]:
    """Each layer's name -> the names of the layers that read its output."""
    found: dict[str, list[str]] = {}
    for name, parents in _parents(model).items():
        for parent in parents:
            found.setdefault(parent, []).append(name)
    return found


def _output_layer_name(model: keras.Model) -> str | None:
    outputs = model.outputs if getattr(model, "outputs", None) else []
    history = getattr(outputs[0], "_keras_history", None) if len(outputs) == 1 else None
    return history.operation.name if history else model.layers[-1].name if model.layers else None


def _flat_copy(layer, model: keras.Model, parent: str) -> bool:
    """A Flatten of an (N, U) layer: the same numbers, the same units."""
    return isinstance(layer, keras.layers.Flatten) and len(model.get_layer(parent).output.shape) == 2


def _flat_maps(layer, parent: list[str], shown_as: dict[str, str], model: keras.Model) -> bool:
    """A Flatten of a readable layer's (N, H, W, C) maps."""
    if not isinstance(layer, keras.layers.Flatten) or len(parent) != 1 or parent[0] not in shown_as:
        return False
    return len(model.get_layer(parent[0]).output.shape) == 4


def _activated_later(layer, readers: dict[str, list[str]], model: keras.Model) -> bool:
    """A layer without an activation of its own whose only reader applies one: its units are the activated ones."""
    after = readers.get(layer.name, [])
    if _activation(layer) != "linear" or len(after) != 1:
        return False
    return isinstance(model.get_layer(after[0]), ACTIVATION_LAYERS)


def _note(layer, parents: list[str], model: keras.Model) -> str | None:
    """What the listing adds: the layer an activation layer activates, or the maps a Flatten lays flat."""
    if not parents and isinstance(layer, keras.layers.Flatten):  # the first layer of a Sequential model
        return "the input's pixels laid flat"
    if len(parents) != 1:
        return None
    parent = model.get_layer(parents[0])
    if isinstance(layer, ACTIVATION_LAYERS) and _activation(parent) == "linear":
        how = _activation(layer) if isinstance(layer, keras.layers.Activation) else type(layer).__name__.lower()
        return f"{shown(parent.name)} after {how}"
    if isinstance(layer, keras.layers.Flatten) and isinstance(parent, keras.layers.InputLayer):
        return "the input's pixels laid flat"
    if isinstance(layer, keras.layers.Flatten) and len(parent.output.shape) == 4:
        return f"the {shown(parent.name)} maps laid flat"
    return None


def readable_layers(model: keras.Model) -> list[Readable]:
    """Every layer --layer may name: the offered ones, the large ones, and the output layer."""
    return list(survey(model).readable)


def find_layer(model: keras.Model, name: str | None) -> Readable:
    """The readable layer called `name`; without a name, or a wrong one, one line listing the choices and
    saying why the others are not offered."""
    found = survey(model)
    _require_readable(model, found)
    if name is None:
        raise NuKerasError(f"--layer is required; {found.listing()}")
    for layer in found.readable:
        if layer.name == name:
            return layer
    if name == ALL_LAYERS or "," in name:  # a stage run without train, which checks the list (`requested_layer`)
        raise NuKerasError(f"--layer {shown(name)!r}: {SEVERAL_LAYERS}")
    for folded in found.folded:
        if folded.name == name:
            raise NuKerasError(f"--layer {shown(name)!r}: {folded.why}; use --layer {shown(folded.into)}")
    why = found.unreadable.get(name, "the model has no layer of that name")
    raise NuKerasError(f"--layer {shown(name)!r} is not a layer that can be read out ({why}); {found.listing()}")


def find_layers(model: keras.Model, names: tuple[str, ...]) -> list[Readable]:
    """The layers --layer names (`all`: every offered one), each checked as `find_layer` checks it."""
    if names == (ALL_LAYERS,):
        found = survey(model)
        _require_readable(model, found)
        if not found.offered:
            raise NuKerasError(f"--layer all: no layer is offered, name one; {found.listing()}")
        return list(found.offered)
    return [find_layer(model, name) for name in names or (None,)]


def requested_layer(model: keras.Model, text: str | None) -> Readable:
    """The one layer a run reads out, from --layer as given: a layer of that very name (commas and all), else the
    names it lists (`config.parse_layers`), each checked first, then more than one refused."""
    for layer in survey(model).readable:
        if layer.name == text:
            return layer
    names = parse_layers(text)
    layers = find_layers(model, names)
    chosen = ", ".join(shown(layer.name) for layer in layers)
    if names == (ALL_LAYERS,) and len(layers) == 1:
        raise NuKerasError(f"--layer all is one layer here: give --layer {chosen} ({SEVERAL_LAYERS})")
    if len(layers) > 1 or names == (ALL_LAYERS,):
        raise NuKerasError(f"{SEVERAL_LAYERS} (you asked for {chosen})")
    return layers[0]


def _require_readable(model: keras.Model, found: Survey) -> None:
    if not found.readable:
        why = "; ".join(f"{shown(name)}: {reason}" for name, reason in found.unreadable.items()) or "it has no layers"
        raise NuKerasError(f"model {shown(model.name)!r} has no layer that can be read out ({why})")


def input_shape(model: keras.Model) -> tuple[int, ...]:
    return tuple(model.inputs[0].shape[1:])


def adapt_images(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The data's images in the model's input shape: unchanged, with a channel axis added ((H, W) to
    (H, W, 1)), or flattened ((H, W[, C]) to (H*W*C,)); any other mismatch is refused by `check_classifier`."""
    if images.shape[1:] == shape:
        return images
    return images.reshape((len(images), *shape))


def input_note(image_shape: tuple[int, ...], shape: tuple[int, ...]) -> str | None:
    """How the images were reshaped for the model, as the pages say it; None when they were not."""
    if image_shape == shape:
        return None
    return f"images of shape {image_shape} were given to the model as {shape}"


def check_one_input_one_output(model: keras.Model) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NuKerasError(
            f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "nu-keras reads classifiers of one image input and one class-probability output"
        )


def check_classifier(model: keras.Model, image_shape: tuple[int, ...], classes: int) -> None:
    """One line naming the expectation when the model cannot take the data's images or does not output
    one probability per class."""
    check_one_input_one_output(model)
    expected_in = input_shape(model)
    fits = expected_in == tuple(image_shape) or expected_in in (
        (*image_shape, 1),
        (int(np.prod(image_shape)),),
    )
    if None in expected_in or not fits:
        raise NuKerasError(f"the model takes inputs of shape {expected_in}, but the data's images are {image_shape}")
    outputs = _graph(model)[2]
    out = tuple((outputs[0] if isinstance(outputs, list) else outputs).shape[1:])
    if out != (classes,):
        raise NuKerasError(f"the model outputs shape {out}, expected a {classes}-way classifier (({classes},))")


def split(model: keras.Model, layer: str) -> tuple[keras.Model, keras.Model]:
    """(head, tail): input -> the layer's output, and the layer's output -> the model's output.

    Both share the model's layers and weights, so head then tail is the model itself.
    """
    inputs, tensors, outputs = _graph(model)
    hidden = tensors[layer]
    if hidden is (outputs[0] if isinstance(outputs, list) else outputs):  # the output layer: nothing after it
        units = keras.Input(shape=tuple(hidden.shape[1:]))
        return keras.Model(inputs, hidden, name="head"), keras.Model(units, keras.layers.Identity()(units), name="tail")
    try:
        tail = keras.Model(hidden, outputs, name="tail")
    except ValueError as exc:  # the layers after it also read earlier ones: "not connected to inputs"
        raise NuKerasError(
            f"--layer {layer!r} does not split the model in two: the layers after it also read earlier layers "
            "(a skip connection); choose a layer that every path from the input to the output goes through"
        ) from exc
    return keras.Model(inputs, hidden, name="head"), tail


def _graph(model: keras.Model) -> tuple:
    """(inputs, {layer name: its output tensor}, outputs) of the model as a functional graph.

    A Sequential model is called layer by layer on a fresh Input (same layers, same weights): its own
    graph is not always connected end to end (layers added after the Input), a functional one is.
    """
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(shape=input_shape(model))
        tensors, x = {}, inputs
        for layer in model.layers:
            x = tensors[layer.name] = layer(x)
        return inputs, tensors, x
    return model.inputs, {layer.name: layer.output for layer in model.layers}, model.outputs


def _weighted_layers(model: keras.Model) -> list:
    """The layers that compute something at inference, input to output (no InputLayer, Flatten, Dropout)."""
    return [layer for layer in model.layers if not isinstance(layer, (keras.layers.InputLayer, *PASS_THROUGH))]


def _activation(layer) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "unknown")


def dense_weights(layer: keras.layers.Dense) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (in, out), bias (out,)) as float32; a layer built with use_bias=False adds nothing, so its
    bias is zeros and every reader can treat all Dense layers alike."""
    kernel, *rest = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
    bias = rest[0] if layer.use_bias else np.zeros(kernel.shape[1], np.float32)
    return kernel, bias


def dense_tail(tail: keras.Model) -> keras.layers.Dense | None:
    """The tail's one Dense layer when the read-out layer feeds the output layer directly, else None:
    then ablation is a matrix product and each unit's outgoing weights are its votes.

    Only a flat (N, U) read-out qualifies: after a convolutional layer, Flatten lays the channels out at
    every position (H*W*C inputs), so the tail is not one weight row per unit and Keras runs it instead.
    """
    if len(tail.inputs[0].shape) != 2:
        return None
    computing = _weighted_layers(tail)
    if len(computing) != 1 or not isinstance(computing[0], keras.layers.Dense):
        return None
    layer = computing[0]
    reads_units = layer.kernel.shape[0] == tail.inputs[0].shape[-1]  # a Reshape in between would change that
    return layer if reads_units and _activation(layer) in ("softmax", "linear") else None


def dense_stack(model: keras.Model, layer: str) -> tuple[list[dict], int] | str:
    """The model as a stack of Dense layers over the flattened image, and the read-out layer's index in it,
    which the Explore page runs exactly in the browser; or the reason it cannot. A Flatten is allowed only
    before the first Dense layer (the page flattens the image as Keras does); Dropout does nothing at
    inference. The stack is also checked as nu_keras.stack.check_stack checks it when the page is written."""
    stack, readout = [], None
    for item in model.layers:
        if isinstance(item, (keras.layers.InputLayer, keras.layers.Dropout)):
            continue
        if isinstance(item, keras.layers.Flatten) and not stack:
            continue
        if not isinstance(item, keras.layers.Dense):
            return f"its layer {item.name!r} is a {type(item).__name__}; the browser runs stacks of Dense layers only"
        if _activation(item) not in ACTIVATIONS:
            return f"its layer {item.name!r} uses the {_activation(item)} activation, which the browser does not run"
        kernel, bias = dense_weights(item)
        readout = len(stack) if item.name == layer else readout
        stack.append({"name": item.name, "kernel": kernel, "bias": bias, "activation": _activation(item)})
    if readout is None or readout == len(stack) - 1:
        return "the read-out layer is not one of its hidden Dense layers"
    first = next(x for x in model.layers if not isinstance(x, keras.layers.InputLayer))
    if len(input_shape(model)) > 1 and not isinstance(first, keras.layers.Flatten):
        return "it does not flatten the image before its first Dense layer"
    if stack[-1]["activation"] not in LAST_ACTIVATIONS:
        return (
            f"its output layer {stack[-1]['name']!r} uses the {stack[-1]['activation']} activation; the page shows "
            "the softmax of the last layer, which is the model's own only for a softmax or linear output"
        )
    outputs = int(np.shape(stack[-1]["kernel"])[1])
    try:
        check_stack(stack, readout, int(np.prod(input_shape(model))), outputs)
    except NuKerasError as exc:
        return f"the browser cannot run it ({exc})"
    return stack, readout


def explore_mismatch(model: keras.Model, stack: list[dict], sample: np.ndarray) -> str | None:
    """Why the Explore page would not show the model's own outputs on `sample` (model inputs), or None.

    The page runs `nu_keras.stack.forward` (explore.js computes the same); a model whose layers do something the
    stack does not describe shows up here as different outputs, and the page is left out rather than wrong.
    """
    expected = np.asarray(model.predict_on_batch(sample), dtype=np.float64)  # (n, C)
    computed = forward(stack, sample.reshape(len(sample), -1))
    same_class = np.array_equal(expected.argmax(axis=1), computed.argmax(axis=1))
    gap = float(np.max(np.abs(expected - computed) / np.maximum(1.0, np.abs(expected))))
    if same_class and gap <= EXPLORE_TOLERANCE:
        return None
    return (
        f"its forward pass in the browser does not match the model on {len(sample)} test images "
        f"(outputs differ by up to {gap:.3g}{'' if same_class else ', and some predicted classes differ'})"
    )


def reads_pixels(model: keras.Model, layer: str, image_shape: tuple[int, ...]) -> bool:
    """True when the read-out layer is a Dense layer on the flattened pixels of a grey image: then its
    kernel's columns are images of what each unit weighs."""
    grey = len(image_shape) == 2 or image_shape[-1] == 1
    first = _weighted_layers(model)[0]
    return grey and first.name == layer and isinstance(first, keras.layers.Dense)


def explore_stack(model: keras.Model, layer: str, sample: np.ndarray) -> tuple[list[dict], int] | str:
    """The Dense stack the Explore page runs, checked against the model's own outputs on `sample` (model
    inputs); or the reason the page is left out."""
    stack = dense_stack(model, layer)
    if isinstance(stack, str):
        return stack
    return explore_mismatch(model, stack[0], sample) or stack


def describe(
    model: keras.Model,
    layer: str,
    image_shape: tuple[int, ...],
    trained_here: bool,
    path: Path | None,
    sample: np.ndarray,
) -> dict:
    """What the pages say about the subject (see the module docstring); JSON-ready. `sample` holds a few
    test images as model inputs (`first_inputs`), on which Explore's forward pass is checked."""
    readable = find_layer(model, layer)
    _, tail = split(model, layer)
    shape = tuple(model.get_layer(layer).output.shape[1:])
    stack = explore_stack(model, layer, sample)
    return {
        "kind": "paper" if trained_here else "user",
        "trained_here": trained_here,
        "model": None if path is None else str(path),
        "model_name": model.name,
        "layer": layer,
        "layer_kind": readable.kind,
        "layer_type": type(model.get_layer(layer)).__name__,
        "units": readable.units,
        "pixel_weights": reads_pixels(model, layer, image_shape),
        "tail_is_dense": dense_tail(tail) is not None,
        "explorable": not isinstance(stack, str),
        "explore_reason": stack if isinstance(stack, str) else None,
        # the Dense stack the Explore page runs: each layer's name and activation, and the read-out's index
        "stack": None
        if isinstance(stack, str)
        else [{"name": x["name"], "activation": x["activation"]} for x in stack[0]],
        "readout": None if isinstance(stack, str) else stack[1],
        "spatial": list(shape[:-1]) if readable.kind == "conv" else None,
        "input_note": input_note(tuple(image_shape), input_shape(model)),
    }


def weights(model: keras.Model, layer: str, subject: dict) -> dict[str, np.ndarray]:
    """The weights the charts and the Explore page draw: the read-out layer's kernel where it reads pixels,
    the output layer's where it follows directly, and every layer of an explorable Dense stack."""
    found = {}
    if subject["pixel_weights"]:
        found["hidden_kernel"], found["hidden_bias"] = dense_weights(model.get_layer(layer))
    tail_layer = dense_tail(split(model, layer)[1])
    if tail_layer is not None:
        found["output_kernel"], found["output_bias"] = dense_weights(tail_layer)
    if subject["explorable"]:
        stack = dense_stack(model, layer)
        for i, item in enumerate(stack[0]):
            found[f"stack_{i}_kernel"], found[f"stack_{i}_bias"] = item["kernel"], item["bias"]
    return {key: np.asarray(value, dtype=np.float32) for key, value in found.items()}


def adopt(path: Path, layer: str | None, data: Dataset, pixels: str, target: Path) -> tuple[keras.Model, float]:
    """A user's model in place of training: loaded safely, checked against the data, its layer found, its
    file copied (a legacy .h5 one saved as .keras) into the artifacts (what later stages read); returns it
    and its test accuracy."""
    model = load_user_model(path)
    check_classifier(model, data.image_shape, data.classes)
    find_layer(model, layer)
    head, _ = split(model, layer)
    require_finite(head.predict_on_batch(first_inputs(model, data.x_test, pixels)), f"its layer {layer!r} outputs")
    probabilities = predict(model, data.x_test, pixels)
    require_finite(probabilities, "its class probabilities")
    save_adopted(model, path, target)
    return model, float(np.mean(probabilities.argmax(axis=1) == data.y_test))


def require_finite(values, what: str) -> None:
    """One line naming what holds NaN or infinity, before anything is written from it: a model with NaN
    weights still predicts a class (argmax of NaN is 0), so every number after would look plausible."""
    values = np.asarray(values)
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)  # per image
    if np.any(bad):
        raise NuKerasError(
            f"the model is not usable: {what} are not finite (NaN or infinity) on {int(np.sum(bad))} of "
            f"{np.size(bad)} test images; check its weights"
        )


def first_inputs(model: keras.Model, images: np.ndarray, pixels: str) -> np.ndarray:
    """The first CHECKED_IMAGES images as the model's input: the batch it is first checked on."""
    return next(model_batches(images[:CHECKED_IMAGES], input_shape(model), pixels))


def predict(model: keras.Model, images: np.ndarray, pixels: str) -> np.ndarray:
    """(N, C) class probabilities, in batches."""
    parts = [model.predict(x, verbose=0) for x in model_batches(images, input_shape(model), pixels)]
    return np.concatenate(parts).astype(np.float32)


def layer_table(model: keras.Model) -> list[dict]:
    """One row per layer for the Method page's model summary table."""
    return [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": str(tuple(layer.output.shape)),
            "parameters": int(layer.count_params()),
        }
        for layer in model.layers
    ]


def batches(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(x), size):
        yield x[start : start + size]


def model_batches(images: np.ndarray, shape: tuple[int, ...], pixels: str, size: int = BATCH) -> Iterator[np.ndarray]:
    """The images as the model's input, one batch at a time (scaled only a batch at a time, too)."""
    for part in batches(images, size):
        yield adapt_images(pixels_for_model(part, pixels), shape)
