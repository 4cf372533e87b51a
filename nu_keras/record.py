"""The measurement record: everything a run measured about one layer, typed, frozen, with its axes named.

`analysis.measure` makes it from a layer's activations; `metrics.json` is its JSON (`to_json`, `from_json`);
every page, chart and the Explore export read it and nothing else, so the publishing side never imports
`analysis` and a record made in a notebook publishes exactly as one made by `nu-keras report`.

Two axes run through it: *class* (C, the data set's classes, named in `classes`) and *unit* (U, the analysed
layer's units: neurons of a Dense layer, channels of a convolution, named in `units`). A field's section says
its shape: `per_class` holds (C,) arrays, `per_unit` (U,) arrays, `class_unit` (C, U) matrices. The record
carries the few test images its pages show (`images`), so publishing needs no data set.

`schema_version` changes whenever a field is renamed, added or removed; `from_json` refuses another version
in one line (run the analyze stage again), never with a KeyError deep inside a template.
"""

from __future__ import annotations

import base64
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np

from nu_keras.errors import NuKerasError

# 1: metrics.json before this record (no schema_version; "digit" and "standardised" keys)
# 2: before a convolution's maps, receptive field and filters, and every unit's feature visualisation
SCHEMA_VERSION = 3


class _Frozen:
    """Frozen all the way down: the dataclass refuses assignment, and its arrays refuse writes, so a record
    handed to a notebook cannot be edited into disagreeing with its own JSON."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value.setflags(write=False)


# The method's constants every run shares (analysis computes with them; the record carries them to the pages).
NEAR_DEAD = 0.95  # a unit exactly zero on at least this share of the test images (but not all) is near-dead
NULL_WHISKERS = (2.5, 97.5)  # percentiles of the rotation null that the Robustness chart's whiskers span
NORMAL_QUANTILE = 1.96  # z of the two-sided 95 % normal interval of a per-class mean over its images


@dataclass(frozen=True)
class Method(_Frozen):
    """How the numbers were made: the thresholds and constants the pages print beside them."""

    dominance_threshold: float  # a class has a dominant unit when one unit is the largest on more than this share
    confidence: float  # the level of every interval (0.95)
    near_dead: float  # a unit exactly zero on at least this share of the images (but not all) is near-dead
    null_whiskers: tuple[float, float]  # percentiles of the rotation null that the Robustness chart spans
    null_tail: float  # a place in the rotation null beyond this tail is "above" or "below"
    claim_min_classes: int  # claim 1 needs a dominant unit for this many classes of ten
    specificity_min_classes: int  # claim 3 needs this many classes of ten with a unit of their own
    privileged_percentile: float  # claim 2: above this percentile of rotated bases
    rotation_null_samples: int  # random rotations in the null
    seed: int  # the seed of the permutation and rotation nulls
    normal_quantile: float  # z of the normal interval of a per-class mean over its images (1.96 for 95 %)

    @classmethod
    def from_config(cls, cfg: Any) -> Method:
        """The method of a run (a `RunConfig`): its thresholds, and the constants every run shares."""
        from nu_keras import inference  # (SciPy: only when a method is made, not when a record is read)

        return cls(
            dominance_threshold=float(cfg.dominance_threshold),
            confidence=float(inference.CONFIDENCE),
            near_dead=float(NEAR_DEAD),
            null_whiskers=tuple(float(p) for p in NULL_WHISKERS),
            null_tail=float(inference.TAIL),
            claim_min_classes=int(cfg.claim_min_classes),
            specificity_min_classes=int(cfg.specificity_min_classes),
            privileged_percentile=float(cfg.privileged_percentile),
            rotation_null_samples=int(cfg.rotation_null_samples),
            seed=int(cfg.seed),
            normal_quantile=float(NORMAL_QUANTILE),
        )


@dataclass(frozen=True)
class PerClass(_Frozen):
    """(C,) per class, in class order."""

    count: np.ndarray  # test images of the class
    accuracy: np.ndarray  # the model's accuracy on them
    top_unit: np.ndarray  # the unit with the largest mean activation over the class's images
    runner_up_unit: np.ndarray  # the second largest
    top_unit_margin: np.ndarray  # top unit's mean minus the runner-up's
    dominant_unit: tuple[int | None, ...]  # the unit largest on more than the threshold share of the images, or None
    rescaled_dominant_unit: tuple[int | None, ...]  # the same after dividing each unit by its spread
    silent_fraction: np.ndarray  # share of the class's images on which every unit is exactly zero
    examples: np.ndarray  # (C, k) test indices of the class's first k images (-1 past the class's size)


@dataclass(frozen=True)
class PerUnit(_Frozen):
    """(U,) per unit, in unit order."""

    mean: np.ndarray  # mean activation over all test images (what "mean" ablation fills in)
    selectivity: tuple[float | None, ...]  # class selectivity index; None for a signed layer
    eta_squared: np.ndarray  # share of the unit's variance explained by the class
    d_prime: np.ndarray  # separation of its preferred class from the rest
    dead_fraction: np.ndarray  # share of images on which the unit is exactly zero
    preferred_class: np.ndarray  # the class with the largest mean activation of the unit
    preferred_class_drop: np.ndarray  # accuracy drop on that class when the unit is zeroed
    top_examples: np.ndarray  # (U, 16) test indices of the images that activate it most
    silent_examples: tuple[tuple[int, ...], ...]  # test indices of preferred-class images where it is zero
    output_weights: np.ndarray | None  # (U, C) its weights into the output layer, where it feeds it directly
    input_weights: np.ndarray | None  # (pixels, U) its weights on the pixels, where it reads them directly
    top_maps: np.ndarray | None = None  # (U, k, h, w) a channel's map on each of its top images; None for Dense
    filters: np.ndarray | None = None  # (U, kh, kw, channels) a convolution's kernels, where it reads the pixels
    feature_visualisation: np.ndarray | None = None  # (U, *image) in [0, 1]: an input that drives each unit


@dataclass(frozen=True)
class ClassUnit(_Frozen):
    """(C, U): one row per class, one column per unit."""

    mean: np.ndarray  # mean activation of the unit over the class's images
    std: np.ndarray  # their standard deviation
    ci95: np.ndarray  # half-width of the 95 % interval of the mean
    dominance_share: np.ndarray  # share of the class's images on which the unit is the largest
    rescaled_dominance_share: np.ndarray  # the same after dividing each unit by its spread
    boxplot: np.ndarray  # (C, U, 5): lower whisker, first quartile, median, third quartile, upper whisker
    mean_maps: np.ndarray | None = None  # (C, U, h, w) a channel's mean map over the class's images; None for Dense


@dataclass(frozen=True)
class Layer(_Frozen):
    """The analysed layer as a whole."""

    signed: bool  # some activation is negative (no ReLU): no selectivity index
    all_units_dead: bool
    live_units: tuple[int, ...]  # units not zero on every image: every statistic over units reads these
    dead_units: tuple[int, ...]
    near_dead_units: tuple[int, ...]
    classes_with_one_image: tuple[int, ...]  # no spread, no interval
    spatial_max: dict | None  # a convolution's channels: where their maxima fall
    receptive_field: dict | None = None  # a convolution's: size, stride, start of one position, in input pixels
    feature_visualisation_note: str | None = None  # why there is no feature visualisation, when there is none
    feature_visualisation_method: str | None = None  # how the pictures were made (featvis.method_text), Markdown
    # share of test images a linear read-out of the units classifies correctly (analysis.linear_readout_accuracy)
    linear_readout_accuracy: float | None = None


@dataclass(frozen=True)
class Images(_Frozen):
    """The test images the pages and Explore show, and only those, in test order."""

    index: np.ndarray  # (N,) test-set index of each
    pixels: np.ndarray  # (N, H, W) or (N, H, W, C): uint8 as stored, float images as float32
    label: np.ndarray  # (N,) class
    prediction: np.ndarray  # (N,) the model's class
    units: np.ndarray  # (N, U) the layer's activations on them

    def rows(self, test_indices: Any) -> np.ndarray:
        """Positions in this record of the given test-set indices."""
        return np.searchsorted(self.index, np.asarray(test_indices, dtype=np.int64))


@dataclass(frozen=True)
class Provenance(_Frozen):
    """Where the numbers come from: settings, versions, data and model."""

    config: dict
    versions: dict
    data_source: str
    data_sha256: str
    dataset: dict
    subject: dict
    history: dict | None  # training curves; None for a model not trained here
    fit_seconds: float | None
    trained_with: list | None
    parameters: int
    layers: list
    timings: dict

    @classmethod
    def bare(cls, **fields: Any) -> Provenance:
        """Provenance of arrays measured outside a run (a notebook): empty unless given."""
        empty = {"config": {}, "versions": {}, "data_source": "", "data_sha256": "", "dataset": {}, "subject": {}}
        empty |= {"history": None, "fit_seconds": None, "trained_with": None, "parameters": 0}
        empty |= {"layers": [], "timings": {}}
        return cls(**(empty | fields))


@dataclass(frozen=True)
class Measurements(_Frozen):
    """One layer of one model, measured: what `analyse` returns and `publish` reads."""

    schema_version: int
    classes: tuple[str, ...]  # the class axis: class names
    units: tuple[str, ...]  # the unit axis: unit labels
    test_accuracy: float
    n_test: int
    method: Method
    layer: Layer
    per_class: PerClass
    per_unit: PerUnit
    class_unit: ClassUnit
    images: Images
    ablation: dict  # per fill ("zero", "mean"): drop (U, C), importance (U,), ...
    ablation_noise: dict
    important_units: dict
    invariant: dict  # measures that rescaling or rotating units cannot move
    null: dict  # the rotation null and this layer's place in it
    claim: dict  # claim 1 as counted on this layer
    claims: dict  # the three claims judged on this layer
    specificity: dict
    rescaled_specificity: dict
    correlations: dict  # rank correlations between selectivity and ablation effects
    tests: dict  # the family of tests, Holm-adjusted
    dynamics: dict | None  # the measures at every epoch of training; None for a model not trained here
    network: tuple[dict, ...] | None  # the Dense stack the Explore page runs, when it can run the model exactly
    provenance: Provenance

    def to_json(self) -> dict:
        """JSON-ready: arrays as lists, image pixels as base64 (a twentieth of the size of a list)."""
        return _to_json(self)

    @classmethod
    def from_json(cls, data: dict) -> Measurements:
        """The record `to_json` wrote; a file of another schema is one line saying what to run."""
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise NuKerasError(
                f"the measurements have schema version {version}, this nu_keras reads {SCHEMA_VERSION}: "
                "run `nu-keras analyze` again"
            )
        try:
            return _from_json(cls, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise NuKerasError(
                f"the measurements do not match schema {SCHEMA_VERSION} ({exc}): run `nu-keras analyze` again"
            ) from exc


# --------------------------------------------------------------------------------------------- images

SAMPLE_PER_CLASS = 40  # first test images of each class kept: Explore's picker (more than any class page shows)
MAX_IMAGES = 1800  # about 1.9 MB of base64 MNIST pixels at most: the misclassified list is cut in test order beyond
MAX_PIXEL_BYTES = MAX_IMAGES * 28 * 28  # the same budget in bytes, for larger, colour or float images


def image_budget(images: np.ndarray) -> int:
    """How many test images a record (and the Explore page) may carry: MAX_IMAGES of MNIST's size, fewer
    when each is larger (none when one image alone is over MAX_PIXEL_BYTES)."""
    size = int(np.prod(images.shape[1:])) * (1 if images.dtype == np.uint8 else 4)  # float pixels kept as float32
    return min(MAX_IMAGES, MAX_PIXEL_BYTES // max(size, 1))


MAX_PARAMETERS = 1_000_000  # 4 MB of float32 weights (5.3 MB as base64): a larger network is not shipped


def network_left_out_because(parameters: int, images: np.ndarray, classes: int) -> str | None:
    """Why a run's network is not carried for the Explore page, or None: the page ships the whole network (at
    most MAX_PARAMETERS) and at least one test image of every class (within MAX_PIXEL_BYTES), so that its
    size stays bounded whatever the number of classes and the size of the images."""
    if parameters > MAX_PARAMETERS:
        return (
            f"its network's {parameters:,} weights and biases would take {parameters * 4 / 1e6:.1f} MB, more than "
            f"the {MAX_PARAMETERS * 4 / 1e6:.1f} MB the page may load"
        )
    if image_budget(images) < classes:
        need = classes * int(np.prod(images.shape[1:])) * (1 if images.dtype == np.uint8 else 4)
        return (
            f"one test image of each of its {classes} classes would take {need / 1e6:.1f} MB, more than the page's "
            f"{MAX_PIXEL_BYTES / 1e6:.1f} MB budget for images"
        )
    return None


def picker_rows(
    labels: np.ndarray, predictions: np.ndarray, per_class: int, classes: int = 10, budget: int = MAX_IMAGES
) -> tuple[np.ndarray, int]:
    """Test-set indices the Explore page ships, in test order: the first `per_class` of each class, then every
    misclassified image as long as the total stays within `budget`; also how many misclassified were left out.
    """
    sample = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(classes)]).astype(np.int64)
    wrong = np.flatnonzero(labels != predictions)
    extra = np.setdiff1d(wrong, sample)
    room = max(budget - len(sample), 0)
    return np.union1d(sample, extra[:room]), max(len(extra) - room, 0)


def image_rows(
    labels: np.ndarray, predictions: np.ndarray, classes: int, images: np.ndarray, explorable: bool, shown: list
) -> np.ndarray:
    """Sorted test indices of the images a record keeps: the first SAMPLE_PER_CLASS of each class (fewer when
    many classes of large images would pass the image budget, at least one), the misclassified images the
    Explore picker ships when the run has an Explore page, and every index in `shown` (the units' top and
    silent examples). Bounded by the budget plus the examples, whatever the number of classes."""
    budget = image_budget(images)
    per_class = max(1, min(SAMPLE_PER_CLASS, budget // classes))
    if explorable:
        rows, _ = picker_rows(labels, predictions, per_class, classes, budget)
    else:
        rows = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(classes)])
    extra = np.concatenate([np.asarray(s, dtype=np.int64).ravel() for s in shown]) if shown else np.zeros(0)
    return np.union1d(rows.astype(np.int64), extra.astype(np.int64))


# --------------------------------------------------------------------------------------------- JSON


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        if value.dtype in (np.uint8, np.float32):  # pixels and activations as stored: exact bytes, a fraction the size
            data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
            return {
                "dtype": data.dtype.str,
                "shape": list(value.shape),
                "base64": base64.b64encode(data.tobytes()).decode(),
            }
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_plain(value: Any) -> Any:
    """A free-form value as the record's JSON holds it: tuples as lists, numpy scalars as numbers."""
    return _arrays_in(_to_json(value))


def _from_json(kind: Any, value: Any) -> Any:
    """Rebuild `value` as the annotated type `kind`: dataclasses by field, arrays from lists or base64."""
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):  # X | None
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _from_json(options[0], value)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _from_json(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)})
    if kind is np.ndarray:
        return _blob_array(value) if isinstance(value, dict) else np.asarray(value)
    if kind is dict:  # a free-form part: arrays in it (the network's kernels) come back as arrays
        return _arrays_in(value)
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        return tuple(_from_json(a, v) for a, v in zip(args, value, strict=True))
    return value


def _blob_array(value: dict) -> np.ndarray:
    raw = base64.b64decode(value["base64"])
    return np.frombuffer(raw, dtype=value["dtype"]).reshape(value["shape"]).copy()


def _arrays_in(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"dtype", "shape", "base64"}:
            return _blob_array(value)
        return {k: _arrays_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays_in(v) for v in value]
    return value


def same(a: Measurements, b: Measurements) -> bool:
    """Two records hold the same numbers (arrays compared by value, NaN equal to NaN)."""
    return _same(_to_json(a), _to_json(b))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    return a == b
