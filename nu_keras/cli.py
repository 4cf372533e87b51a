"""`nu-keras`: run the whole report or one stage; bad input ends in one line and exit code 2."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import re
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

# Nothing here imports numpy: `entry_point` sets the thread settings before it is first imported (see there).
from nu_keras import progress
from nu_keras.config import (
    BACKENDS,
    FIGURE_FORMATS,
    MAX_OFFERED_UNITS,
    PIXELS,
    REPORT_FOLDER,
    RunConfig,
    default_backend,
    output_places,
    runs_in_checkout,
    set_backend_environment,
)
from nu_keras.errors import DISK_FULL, NuKerasError
from nu_keras.names import shown


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage + error) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"nu-keras: error: {shown(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    from nu_keras import pipeline  # the stages describe themselves: names and help come from there
    from nu_keras.data import DATASETS

    d = RunConfig()
    common = _Parser(add_help=False)
    common.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"random seed for the initial weights and the order the training images are read in (default {d.seed})",
    )
    common.add_argument(
        "--epochs", type=int, default=d.epochs, help=f"training epochs, at least 1 (default {d.epochs})"
    )
    common.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"images per training step (default {d.batch_size})"
    )
    common.add_argument(
        "--learning-rate", type=float, default=d.learning_rate, help=f"Adam learning rate (default {d.learning_rate})"
    )
    common.add_argument(
        "--examples", type=int, default=d.examples, help=f"example images per class page, 1-20 (default {d.examples})"
    )
    common.add_argument(
        "--seeds",
        type=int,
        default=d.sweep_seeds,
        help=f"networks per width in the seed sweep (default {d.sweep_seeds})",
    )
    common.add_argument(
        "--widths",
        type=_widths,
        default=d.sweep_widths,
        help="hidden widths of the sweep, comma-separated, e.g. 5,10,20,50 (default 10)",
    )
    common.add_argument(
        "--out",
        type=_path,
        default=None,
        help=f"folder for model, activations and metrics (default {d.out} in the checkout); outside the checkout, "
        f"named without --pages-dir and --site-dir, the folder that holds all three (default ./{REPORT_FOLDER})",
    )
    common.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default=None,
        help="a named data set (default mnist; fashion-mnist comes from Debian's dataset-fashion-mnist offline)",
    )
    common.add_argument(
        "--data",
        type=_path,
        default=None,
        help="an .npz of x_train y_train x_test y_test (uint8 or [0, 1] float images, any HxW or HxWxC) and "
        "optionally class_names: your own data, or with --dataset a local copy of that data set",
    )
    common.add_argument(
        "--model",
        type=_path,
        default=None,
        help="your trained Keras 3 classifier (.keras, or a legacy .h5): analysed instead of training the paper's "
        "network; loaded with safe_mode (no Lambda layers)",
    )
    common.add_argument(
        "--layer",
        default=None,
        help="the layer of --model whose units are read out (a conv layer's channels are units; the output "
        "layer's logits or probabilities are units too); without it, the layers that can be read out are listed, "
        f"with why the others are not (a Dropout is its input at inference; a layer of more than "
        f"{MAX_OFFERED_UNITS} units, or a Flatten of conv maps, is read only by name). Names separated by commas, "
        "or all (every offered layer), read several layers in one run: one site, a section per layer, and a "
        "cross-layer overview",
    )
    common.add_argument(
        "--pixels",
        choices=PIXELS,
        default=d.pixels,
        help="how --model receives uint8 pixels: unit (divided by 255 into [0, 1], default) or raw (0-255)",
    )
    common.add_argument(
        "--pages-dir",
        type=_path,
        default=None,
        help=f"folder for generated pages and charts (default {d.pages_dir} in the checkout, else pages/ in the "
        "report folder)",
    )
    common.add_argument(
        "--site-dir",
        type=_path,
        default=None,
        help=f"folder for the built site (default {d.site_dir} in the checkout, else site/ in the report folder)",
    )
    common.add_argument(
        "--templates",
        type=_path,
        default=None,
        help="folder of Jinja2 page templates (default: those nu_keras ships, report_templates/ of a checkout)",
    )
    common.add_argument(
        "--figure-format",
        choices=FIGURE_FORMATS,
        default=d.figure_format,
        help=f"file format of every chart: png (raster) or svg (vector, sharp at any zoom) (default {d.figure_format})",
    )
    common.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend to train on (default: $KERAS_BACKEND if set, else tensorflow; jax needs the [jax] extra)",
    )
    common.add_argument(
        "--seeds-per-block",
        type=int,
        default=d.sweep_block_seeds,
        help=f"sweep seeds trained together as one model, one task on a cluster (default {d.sweep_block_seeds})",
    )
    common.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the sweep's (width, seed block) tasks on this Dask scheduler, e.g. tcp://10.0.0.5:8786, "
        "or on a local cluster of N worker processes with local:N (needs the [dask] extra)",
    )
    common.add_argument("--force", action="store_true", help="re-run every stage even when its inputs did not change")
    common.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")
    parser = _Parser(
        prog="nu-keras",
        description="Train the 784-10-10 MNIST network (or load your own Keras 3 classifier) and publish what "
        "the units of its hidden layer do.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    report = "run every stage: " + ", ".join(pipeline.STAGE_NAMES)
    for name, text in [("report", report)] + [(stage.name, stage.help) for stage in pipeline.STAGES]:
        sub.add_parser(name, parents=[common], help=text, description=text)
    add_publish_parser(sub)
    return parser


def add_publish_parser(sub) -> None:
    """`nu-keras publish`: the built site to a git branch (GitHub Pages) or a folder (nu_keras.deploy)."""
    from nu_keras.deploy import DEFAULT_BRANCH

    text = "deploy the built site to a branch of a git repository (GitHub Pages: gh-pages) or to a folder"
    publish = sub.add_parser("publish", help=text, description=text)
    publish.add_argument(
        "--site-dir",
        type=_path,
        default=None,
        help=f"the built site (default {RunConfig.site_dir} in the checkout, else ./{REPORT_FOLDER}/site)",
    )
    target = publish.add_mutually_exclusive_group(required=True)
    target.add_argument("--repo", help="a git repository (path or URL `git push` accepts) to commit the site to")
    target.add_argument("--folder", type=_path, help="a folder to copy the site into (a web server's root)")
    publish.add_argument("--branch", default=DEFAULT_BRANCH, help=f"the branch of --repo (default {DEFAULT_BRANCH})")
    publish.add_argument("--message", default=None, help="the commit message (default: says what was published)")
    publish.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")


def _path(text: str) -> Path:
    """A path flag; an empty value (an unset shell variable) would mean the working folder: refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not allowed")
    return Path(text)


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def config_from(args: argparse.Namespace) -> RunConfig:
    places, _ = output_places(
        {"out": args.out, "pages_dir": args.pages_dir, "site_dir": args.site_dir}, runs_in_checkout()
    )
    return RunConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        examples=args.examples,
        out=places["out"],
        sweep_seeds=args.seeds,
        sweep_widths=args.widths,
        sweep_block_seeds=args.seeds_per_block,
        backend=args.backend or default_backend(),
        scheduler=args.scheduler,
        force=args.force,
        templates=args.templates,
        dataset=args.dataset,
        data=args.data,
        model=args.model,
        layer=args.layer,
        pixels=args.pixels,
        pages_dir=places["pages_dir"],
        site_dir=places["site_dir"],
        figure_format=args.figure_format,
    )


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, raised where the run is, so its `finally` blocks remove half-built folders."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum: int, frame) -> None:
    if _swallowed_here(frame):  # raising now would only print "Exception ignored": raise it 50 ms later
        _pending_signal[:] = [signum]
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    raise Interrupted(signum)


def _swallowed_here(frame) -> bool:
    """True inside a garbage-collection callback or the unraisable hook, where Python drops exceptions."""
    codes = {getattr(callback, "__code__", None) for callback in gc.callbacks} | {_deliver_again.__code__}
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def _deliver_again(unraisable) -> None:
    """A signal that landed in a callback Python cannot raise from (JAX's garbage-collection hook, which
    Keras loads whatever the backend) is raised again 50 ms later by an alarm, so it stops the run where
    it can instead of printing "Exception ignored" and letting the run go on."""
    if isinstance(unraisable.exc_value, Interrupted):
        _pending_signal[:] = [unraisable.exc_value.signum]
        signal.setitimer(signal.ITIMER_REAL, 0.05)
    else:
        sys.__unraisablehook__(unraisable)


_pending_signal: list[int] = []


def _raise_pending(signum: int, frame) -> None:
    _raise_interrupted(_pending_signal[0] if _pending_signal else signal.SIGINT, frame)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (0 done, 1 system error, 2 bad input, 130/143 signals)."""
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, _raise_pending)
    sys.unraisablehook = _deliver_again
    try:
        try:
            code = _main(argv)
        except SystemExit as exc:  # --help, or a usage error argparse already printed
            code = exc.code
        sys.stdout.flush()  # a closed stdout fails here, where it can be handled, not at exit
        return code
    except BrokenPipeError:  # `nu-keras report | head -1`: the reader left; nothing to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Interrupted as exc:  # a signal between the handlers below and here
        return 128 + exc.signum
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = sys.__unraisablehook__


def entry_point() -> None:
    """`nu-keras` and `python -m nu_keras`: `main`, then leave without the interpreter's teardown.

    The process's own settings are made here, not when nu_keras is imported (an import changes no global
    state). The thread settings go into the environment before numpy loads, which `main` imports lazily: its
    BLAS reads OMP_NUM_THREADS once, and with two threads its large matrix products sum in another order than
    in a process started with the settings in place (a sweep's worker, a Dask worker), which moved the
    sweep's float64 measures in their last bits. `--backend` still chooses KERAS_BACKEND later, before Keras
    is imported. Ctrl-C before `main` holds the signals (or after it let them go) is one line, no traceback.

    Everything is written (atomically) and flushed by the time `main` returns; what remains is
    TensorFlow unwinding its runtime, about a second after every command that trained or read a model.
    Only the console entry does this: `main` itself returns normally (the tests call it in-process).
    """
    try:
        set_backend_environment()
        code = main()
        logging.shutdown()
    except KeyboardInterrupt:
        sys.stderr.write("nu-keras: interrupted\n")
        code = 130
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a reader that left (`| head`) was answered by `main` already
            pass
    os._exit(code if isinstance(code, int) else 1 if code else 0)


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        set_backend_environment(getattr(args, "backend", None))  # before anything imports Keras
        _log_to_stderr(args.quiet)
        # TensorFlow's retracing notices (a last, smaller batch) reach Python's logging: nothing to act on
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        if args.command == "publish":
            return publish(args)
        cfg = config_from(args)
        check_encodable(cfg)
        check_report_folder(args, cfg)
        with native_logs_filtered():
            from nu_keras import pipeline

            stages = pipeline.STAGE_NAMES if args.command == "report" else (args.command,)
            pipeline.run(stages, cfg)
            if args.command == "report":
                _print_summary(cfg)
    except NuKerasError as exc:
        return _fail(" ".join(str(exc).split()), 2)
    except Interrupted as exc:
        what = "terminated" if exc.signum == signal.SIGTERM else "interrupted"
        return _fail(f"{what}; artifacts already written are intact", 128 + exc.signum, prefix="nu-keras: ")
    except KeyboardInterrupt:
        return _fail("interrupted; artifacts already written are intact", 130, prefix="nu-keras: ")
    except BrokenPipeError:
        raise  # handled in main
    except OSError as exc:  # a full disk, a vanished folder, a permission changed mid-run
        where = f" ({failed_path(exc)})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}; nothing already built was replaced", 1)
    return 0


def check_report_folder(args: argparse.Namespace, cfg: RunConfig) -> None:
    """The folder that holds all three outputs outside the checkout (`--out DIR` named alone) is refused
    where an output folder would be: the working folder, home, the file-system root, the checkout."""
    from nu_keras import folders, pipeline

    given = {"out": args.out, "pages_dir": args.pages_dir, "site_dir": args.site_dir}
    _, root = output_places(given, runs_in_checkout())
    if root is not None:
        folders.check_output_folders({"--out": root}, pipeline.protected_places(cfg), {})


def publish(args: argparse.Namespace) -> int:
    """`nu-keras publish`: the site to --repo's --branch, or into --folder."""
    from nu_keras import deploy, pipeline

    site = args.site_dir or output_places({}, runs_in_checkout())[0]["site_dir"]
    if args.repo is not None:
        commit = deploy.publish_to_branch(site, args.repo, args.branch, args.message)
        print(f"published: branch {args.branch} of {args.repo} at {commit[:12]}")
    else:
        deploy.publish_to_folder(site, args.folder, pipeline.protected_places(RunConfig()))
        print(f"published: {(args.folder / 'index.html').resolve()}")
    return 0


def failed_path(exc: OSError) -> str:
    """The path an OSError names. A copy's error names its source first and its destination second
    (shutil, MkDocs copying the theme): for a write that did not fit, the destination is where it failed."""
    if exc.errno in DISK_FULL and exc.filename2:
        return exc.filename2
    return exc.filename


def _fail(message: str, code: int, prefix: str = "nu-keras: error: ") -> int:
    print(prefix + shown(message), file=sys.stderr)  # a name in it may hold terminal escape sequences
    return code


class ShownFormatter(logging.Formatter):
    """Log lines with their control characters written as escapes: a class or layer name in a message
    must not move the cursor, erase a line or set the terminal's title (see `nu_keras.names.shown`)."""

    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record))


def _log_to_stderr(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ShownFormatter("nu-keras: %(message)s"))
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, handlers=[handler])


def check_encodable(cfg: RunConfig) -> None:
    """Refuse now, not after training, a path that cannot be written into UTF-8 pages and JSON."""
    named = {"--out": cfg.out, "--pages-dir": cfg.pages_dir, "--site-dir": cfg.site_dir, "--data": cfg.data}
    named |= {"--model": cfg.model}
    named |= {"--templates": cfg.templates, "NU_KERAS_CACHE": cfg.cache_path}
    for flag, path in named.items():
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            raise NuKerasError(f"{flag} {ascii(str(path))} is not a UTF-8 path; rename it") from None


# TensorFlow's C++ start-up lines (absl: "I0000 00:00:... port.cc:153] oneDNN ...", a CUDA cuInit error
# on a machine without GPU, retracing notices) go straight to file descriptor 2, before and regardless of
# TF_CPP_MIN_LOG_LEVEL. They tell a user nothing they can act on, so the CLI drops them.
NATIVE_LOG_LINE = re.compile(
    rb"^([IW]\d{4} [\d:.]+ +\d+ \S+:\d+\]"
    rb"|E\d{4} .*(cuInit|cuda|CUDA|cuDNN|cuFFT|cuBLAS)"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|WARNING:tensorflow:.*retracing)"
)


@contextmanager
def native_logs_filtered():
    """Pass everything written to stderr through, except TensorFlow's native start-up lines."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_forward_lines, args=(read_end, real), daemon=True)
    pump.start()
    try:
        with progress.drawn_on(real):  # a bar's redraws end in "\r", not a line: they go to the terminal itself
            yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes our copy of the pipe's write end: the pump sees the end of input
        pump.join(timeout=5)
        os.close(real)


def _forward_lines(read_end: int, real: int) -> None:
    with os.fdopen(read_end, "rb") as source:
        for line in source:
            if not NATIVE_LOG_LINE.match(line):
                os.write(real, line)


def _print_summary(cfg: RunConfig) -> None:
    from nu_keras import artifacts, multilayer

    names = multilayer.requested_layers(cfg)  # read from stages.json: the run just recorded them
    first = multilayer.layer_config(cfg, names[0]) if names else cfg  # every layer's record: the same model
    metrics = artifacts.read_json(artifacts.paths(first).metrics)
    print(f"test accuracy: {metrics['test_accuracy']:.4f}")
    if names:
        print(f"layers: {', '.join(shown(name) for name in names)}")
    print(f"site: {(cfg.site_dir / 'index.html').resolve()}")
