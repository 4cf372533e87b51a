"""One frozen `RunConfig` that every stage receives; the defaults live here and nowhere else."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from nu_keras import resources
from nu_keras.errors import NuKerasError

# The source checkout nu_keras runs from; None for an installed wheel, which finds its templates, mkdocs.yml
# and theme in the package (see resources.py)
PROJECT_ROOT = resources.checkout_root()


BACKEND_ENVIRONMENT = {
    "KERAS_BACKEND": "tensorflow",
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ start-up chatter hides the progress lines
    # The matrices of a 784-10-10 network are too small to split across threads: on the 2-core machine
    # one thread trains one network as fast as two and ten seeds together 25 % faster (bench), with the
    # same weights, and leaves the other core to the rest of the machine.
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    # oneDNN's matrix products run on OpenMP threads, and their count changes the float summation order:
    # fixed at one, the weights are bit for bit those of any other process (a Dask worker, another machine).
    "OMP_NUM_THREADS": "1",
    # The same for JAX's XLA CPU backend: one thread fits one network as fast as two on the 2-core machine.
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
BACKENDS = ("tensorflow", "jax")
PIXELS = ("unit", "raw")
FIGURE_FORMATS = ("png", "svg")  # what a chart may be drawn as; charts/style.py `save` reads the file's suffix


def set_backend_environment(backend: str | None = None) -> None:
    """Backend settings read once, when Keras is first imported; values already set win, except that
    an explicit `backend` (the `--backend` flag) replaces KERAS_BACKEND."""
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    for name, value in BACKEND_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def default_backend() -> str:
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def default_cache_path() -> Path:
    """Where a fetched MNIST is kept; `NU_KERAS_CACHE` overrides it (tests point it at a temp dir)."""
    env = os.environ.get("NU_KERAS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "nu_keras" / "mnist.npz"


# Outside the checkout, every output goes under one folder in the working folder (see `output_places`)
REPORT_FOLDER = Path("nu-keras-report")
OUTSIDE_PLACES = {"out": "artifacts", "pages_dir": "pages", "site_dir": "site"}  # their names inside it


def runs_in_checkout(cwd: Path | None = None) -> bool:
    """True when nu-keras runs from its source checkout and stands in it (a developer's `make report`)."""
    root = resources.checkout_root()
    return root is not None and Path(cwd or Path.cwd()).resolve() == root.resolve()


def output_places(given: dict[str, Path | None], in_checkout: bool) -> tuple[dict[str, Path], Path | None]:
    """The three output folders {"out", "pages_dir", "site_dir"} from those the user named (None where not),
    and the report folder that holds them all (None when there is none).

    In the checkout: RunConfig's defaults (artifacts, docs/generated, site), which MkDocs and `make` expect.
    Anywhere else, so that a run never scatters folders where the user stands: `--out DIR` named alone is the
    report folder (DIR/artifacts, DIR/pages, DIR/site); with nothing named, ./nu-keras-report is. Once
    --pages-dir or --site-dir is named, --out is the artifacts folder, as in the checkout, and a folder not
    named goes under ./nu-keras-report.
    """
    if in_checkout:
        defaults = {"out": RunConfig.out, "pages_dir": RunConfig.pages_dir, "site_dir": RunConfig.site_dir}
        return {name: given.get(name) or defaults[name] for name in OUTSIDE_PLACES}, None
    alone = given.get("pages_dir") is None and given.get("site_dir") is None
    root = given["out"] if alone and given.get("out") is not None else REPORT_FOLDER
    places = {name: given.get(name) or root / inside for name, inside in OUTSIDE_PLACES.items()}
    if alone:
        places["out"] = root / OUTSIDE_PLACES["out"]
    return places, root if alone else None


@dataclass(frozen=True)
class RunConfig:
    # --- training recipe (batch 128 + Adam 3e-3 for 10 epochs reaches the paper's 93 % on seeds 0-4) ---
    seed: int = 0  # the initial weights (keras.utils.set_random_seed before the layers are built)
    # The order the training images are read in (a new permutation each epoch): None gives every network its
    # own, drawn from its seed, so seeds differ in their data order as well as their initial weights; the
    # sweep's branch for seed s still reads exactly the batches `nu-keras train --seed s` reads alone. A
    # number gives every network that one order.
    data_order_seed: int | None = None
    epochs: int = 10  # full passes over the training images
    batch_size: int = 128  # images per gradient step
    learning_rate: float = 3e-3  # Adam step size
    validation_size: int = 5000  # last training images held out for the training curves
    steps_per_execution: int = 64  # batches per compiled call: cuts per-step overhead, same weights
    hidden_units: int = 10  # the paper's bottleneck width
    # Keras backend the networks train on (seeds give other weights on another backend); like Keras,
    # KERAS_BACKEND chooses when no --backend is given
    backend: str = field(default_factory=default_backend)
    # --- report ---
    examples: int = 5  # example images per digit page (the first k of that digit in test order)
    dominance_threshold: float = 0.5  # a digit "has a dominant neuron" above this share of its images
    paper_accuracy: float = 0.93  # the test accuracy the paper reports, shown beside ours
    # --- robustness: the claim as thresholds fixed before anything runs ---
    sweep_seeds: int = 10  # networks per width in the seed sweep (seeds seed, seed+1, ...): one block
    sweep_widths: tuple[int, ...] = (10,)  # hidden widths of the sweep; `nu-keras sweep` widens it
    # Seeds trained together as one model (one task of a distributed sweep). Part of the result: the
    # float summation order of a block depends on its size, so weights agree across block sizes to about
    # 1e-6, and bit for bit only for the same blocks, wherever they run.
    sweep_block_seeds: int = 10
    claim_min_classes: int = 8  # the claim needs a dominant unit for at least this many classes of ten ...
    claim_seed_fraction: float = 0.8  # ... in at least this share of the seeds (width 10)
    # The second claim, "the neuron basis is privileged": the trained neurons lie above this percentile of
    # random rotated bases of the same layer on every symmetry-invariant measure ...
    privileged_percentile: float = 0.95
    privileged_seed_fraction: float = 0.8  # ... in at least this share of the seeds (width 10)
    rotation_null_samples: int = 1000  # random rotations per seed in that null distribution
    # The third claim, "different classes have different dominant units": at least this many of ten classes
    # have a dominant unit that dominates no other class ...
    specificity_min_classes: int = 8
    specificity_seed_fraction: float = 0.8  # ... in at least this share of the seeds (width 10)
    # --- what is analysed, on which data ---
    # A named data set (mnist, fashion-mnist); None means MNIST, or the user's own data when `data` is set
    dataset: str | None = None
    # A file of data: a copy of `dataset` when that is named (validated against it), else the user's own
    # data set (x_train y_train x_test y_test, optional class_names); None walks the data set's source chain
    data: Path | None = None
    model: Path | None = None  # a user's trained Keras 3 classifier; None trains the paper's network here
    # The layer of `model` whose units are read out (required with `model`), as --layer gives it: one name, names
    # separated by commas, or "all" (every offered layer); `layers` is it parsed. Several are read by
    # nu_keras.multilayer, each as a run of its one layer.
    layer: str | None = None
    pixels: str = "unit"  # how stored pixels reach `model`: "unit" (uint8 / 255 into [0, 1]) or "raw" (as stored)
    # --- where things go ---
    cache_path: Path = field(default_factory=default_cache_path)
    out: Path = Path("artifacts")  # model.keras, activations.npz, metrics.json, ...
    pages_dir: Path = Path("docs/generated")  # generated Markdown and charts (the MkDocs docs_dir)
    site_dir: Path = Path("site")  # the built static site
    # The checkout (None for a wheel): the pages print paths inside it relative to it, and no output may be it
    project_root: Path | None = PROJECT_ROOT
    templates: Path | None = None  # Jinja2 page templates; None means nu_keras's own (resources.templates_dir)
    figure_format: str = "png"  # every chart's file format: "png" (raster, 180 dpi) or "svg" (vector)
    force: bool = False  # re-run every stage even when its inputs are unchanged
    scheduler: str | None = None  # Dask scheduler address for the sweep, "local:N", or None (in this process)

    def __post_init__(self) -> None:
        # Bounds below are those numpy and TensorFlow accept; past them a run fails late with a traceback.
        _require(0 <= self.seed < 2**32, f"--seed must be between 0 and 2**32 - 1, got {self.seed}")
        _require(
            self.data_order_seed is None or 0 <= self.data_order_seed < 2**32,
            f"data_order_seed must be None or between 0 and 2**32 - 1, got {self.data_order_seed}",
        )
        _require(self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}")
        _require(1 <= self.batch_size <= 60000, f"--batch-size must be between 1 and 60000, got {self.batch_size}")
        _require(
            math.isfinite(self.learning_rate) and self.learning_rate > 0,
            f"--learning-rate must be a positive finite number, got {self.learning_rate}",
        )
        _require(1 <= self.examples <= 20, f"--examples must be between 1 and 20, got {self.examples}")
        _require(0 <= self.validation_size < 60000, "validation_size must be in [0, 60000)")
        _require(self.hidden_units >= 2, "hidden_units must be at least 2 (a preferred unit needs a runner-up)")
        _require(1 <= self.sweep_seeds <= 50, f"--seeds must be between 1 and 50, got {self.sweep_seeds}")
        _require(self.backend in BACKENDS, f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        _require(
            1 <= self.sweep_block_seeds <= 50,
            f"--seeds-per-block must be between 1 and 50, got {self.sweep_block_seeds}",
        )
        _require(
            self.scheduler is None or _scheduler_ok(self.scheduler),
            f"--scheduler must be a Dask scheduler address (tcp://HOST:PORT, or HOST:PORT) or local:N with N "
            f"from 1 to 64, got {self.scheduler!r}",
        )
        _require(
            self.figure_format in FIGURE_FORMATS,
            f"--figure-format must be one of {', '.join(FIGURE_FORMATS)}, got {self.figure_format!r}",
        )
        _require(self.pixels in PIXELS, f"--pixels must be one of {', '.join(PIXELS)}, got {self.pixels!r}")
        _require(self.model is not None or self.layer is None, "--layer names a layer of --model; give --model too")
        parse_layers(self.layer)  # a malformed list is one line before any model is loaded
        _require(
            self.model is not None or self.pixels == "unit",
            "--pixels applies to --model: the paper's network is trained on pixels scaled into [0, 1]",
        )
        _require(self.rotation_null_samples >= 100, "rotation_null_samples must be at least 100")
        _require(
            len(self.sweep_widths) > 0 and all(2 <= w <= 512 for w in self.sweep_widths),
            f"--widths must be whole numbers between 2 and 512, got {self.sweep_widths}",
        )

    @property
    def templates_dir(self) -> Path:
        return Path(self.templates) if self.templates else resources.templates_dir()

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    @property
    def layers(self) -> tuple[str, ...]:
        """--layer as a tuple of names: ("conv2d",), ("conv2d", "dense"), ("all",), or () without it."""
        return parse_layers(self.layer)

    @property
    def trains_here(self) -> bool:
        """True for the paper's network, which this project trains; False for a user's --model."""
        return self.model is None

    def sweep_seed_list(self) -> list[int]:
        """The sweep's seeds at every width: seed, seed + 1, ..."""
        return [self.seed + i for i in range(self.sweep_seeds)]

    def report_block(self) -> list[int]:
        """The seeds the report's network trains with: the sweep's first block, whose branch 0 it is.

        One fit then serves both the report and the sweep; the block's size is part of the result (see
        `sweep_block_seeds`), so the train stage depends on it.
        """
        return self.sweep_seed_list()[: self.sweep_block_seeds]

    def subject_fields(self) -> dict:
        """What is analysed on which data: every stage's result depends on these."""
        names = ("dataset", "model", "layer", "pixels")
        return {name: str(v) if isinstance(v := getattr(self, name), Path) else v for name in names}

    def training_fields(self) -> dict:
        """The fields that change the trained model (what a cached model depends on)."""
        names = [
            "seed",
            "data_order_seed",
            "epochs",
            "batch_size",
            "learning_rate",
            "validation_size",
            "steps_per_execution",
            "hidden_units",
            "backend",
        ]
        return {name: getattr(self, name) for name in names} | self.subject_fields()

    def measured_fields(self) -> dict:
        """The settings a measurement record states (its provenance), and so what the analyze stage depends
        on: `to_json` without where and how the record is published (pages, site, templates, examples)."""
        return {k: v for k, v in self.to_json().items() if k not in PUBLISHING_FIELDS}

    def to_json(self) -> dict:
        """The settings a report prints; `force` and `scheduler` change how a run goes, not what it computes."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("force", "scheduler")}
        return {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


# Settings of publishing a record, not of measuring it: a record made in a notebook has none of them.
PUBLISHING_FIELDS = ("pages_dir", "site_dir", "templates", "examples", "figure_format")

# The --scheduler forms: only TCP, the protocol a plain Dask scheduler speaks; tls:// needs certificates
# and ucx:// a GPU stack we do not configure. ASCII digits only: str.isdigit() also accepts "²", which int()
# refuses.
LOCAL_SCHEDULER = re.compile(r"local:([0-9]{1,2})")
TCP_SCHEDULER = re.compile(r"(?:tcp://)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})")


ALL_LAYERS = "all"  # --layer all: every offered layer
MAX_OFFERED_UNITS = 512  # a layer with more units (a Flatten of 1,600) is listed with its size, read only by name


def parse_layers(text: str | None) -> tuple[str, ...]:
    """--layer's names, split at commas; an empty name, a repeated one, or "all" beside others is one line.
    Whether each names a layer that can be read out is checked against the model (`subject.find_layers`)."""
    if text is None:
        return ()
    if "," not in text:
        return (text,)  # one name, as given: the name every stage reads out
    names = tuple(name.strip() for name in text.split(","))
    _require(all(names), f"--layer {text!r} has an empty name; give one name, names separated by commas, or all")
    _require(len(set(names)) == len(names), f"--layer {text!r} names a layer twice")
    _require(
        ALL_LAYERS not in names or names == (ALL_LAYERS,),
        f"--layer {text!r}: {ALL_LAYERS} means every offered layer; give it alone",
    )
    return names


def _scheduler_ok(text: str) -> bool:
    local = LOCAL_SCHEDULER.fullmatch(text)
    if local:
        return 1 <= int(local.group(1)) <= 64
    tcp = TCP_SCHEDULER.fullmatch(text)
    return tcp is not None and 1 <= int(tcp.group(1)) <= 65535


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise NuKerasError(message)
