"""`nu-keras`: run the whole report or one stage; bad input ends in one line and exit code 2."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from nu_keras.config import BACKENDS, RunConfig, default_backend, set_backend_environment
from nu_keras.errors import NuKerasError

STAGE_HELP = {
    "report": "run every stage: train, collect, analyze, sweep (width 10), render, build",
    "train": "load MNIST, train the 784-10-10 model -> model.keras, train.json",
    "collect": "run the hidden-layer submodel over the test set -> activations.npz, weights.npz",
    "analyze": "per-digit statistics, dominance, selectivity, ablation -> metrics.json",
    "sweep": "train --seeds networks per width in --widths together, with controls -> sweep.json",
    "render": "charts and Markdown pages from metrics.json (and sweep.json) -> the pages folder",
    "build": "build the MkDocs site from the pages folder -> site/",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage + error) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"nu-keras: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    common = _Parser(add_help=False)
    common.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"random seed for the initial weights (default {d.seed}); the batch order is the same for every seed",
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
        "--examples", type=int, default=d.examples, help=f"example images per digit page, 1-20 (default {d.examples})"
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
        "--out", type=Path, default=d.out, help=f"folder for model, activations and metrics (default {d.out})"
    )
    common.add_argument(
        "--data",
        type=Path,
        default=None,
        help="an mnist.npz to use instead of the source chain (keys x_train y_train x_test y_test)",
    )
    common.add_argument(
        "--pages-dir",
        type=Path,
        default=d.pages_dir,
        help=f"folder for generated pages and charts (default {d.pages_dir})",
    )
    common.add_argument(
        "--site-dir", type=Path, default=d.site_dir, help=f"folder for the built site (default {d.site_dir})"
    )
    common.add_argument(
        "--templates", type=Path, default=None, help="folder of Jinja2 page templates (default report_templates/)"
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
        prog="nu-keras", description="Train the 784-10-10 MNIST network and publish what its hidden neurons do."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, text in STAGE_HELP.items():
        sub.add_parser(name, parents=[common], help=text, description=text)
    return parser


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def config_from(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        examples=args.examples,
        out=args.out,
        sweep_seeds=args.seeds,
        sweep_widths=args.widths,
        sweep_block_seeds=args.seeds_per_block,
        backend=args.backend or default_backend(),
        scheduler=args.scheduler,
        force=args.force,
        templates=args.templates,
        data=args.data,
        pages_dir=args.pages_dir,
        site_dir=args.site_dir,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_backend_environment(args.backend)  # before anything imports Keras
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="nu-keras: %(message)s", stream=sys.stderr
    )
    from nu_keras import pipeline

    try:
        cfg = config_from(args)
        stages = pipeline.STAGES if args.command == "report" else (args.command,)
        pipeline.run(stages, cfg)
    except NuKerasError as exc:
        print(f"nu-keras: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nu-keras: interrupted; artifacts already written are intact", file=sys.stderr)
        return 130
    if args.command == "report":
        _print_summary(cfg)
    return 0


def _print_summary(cfg: RunConfig) -> None:
    from nu_keras import artifacts, pipeline

    metrics = artifacts.read_json(pipeline.paths(cfg)["metrics"])
    print(f"test accuracy: {metrics['test_accuracy']:.4f}")
    print(f"site: {(cfg.site_dir / 'index.html').resolve()}")
