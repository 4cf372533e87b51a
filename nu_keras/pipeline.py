"""Run the stages in order. Each reads the previous stage's files from `cfg.out` and writes its own.

    train    MNIST            -> model.keras, train.json (history, test accuracy, data source, versions)
    collect  model.keras      -> activations.npz (hidden, labels, predictions, probabilities), weights.npz
    analyze  activations.npz  -> metrics.json
    sweep    MNIST            -> sweep.json (N seeds per width trained together, with controls)
    render   metrics.json     -> charts (PNG) and Markdown pages in cfg.pages_dir
    build    pages            -> static site in cfg.site_dir
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from nu_keras import artifacts
from nu_keras.config import RunConfig

log = logging.getLogger(__name__)

STAGES = ("train", "collect", "analyze", "sweep", "render", "build")
ACTIVATION_KEYS = ("hidden", "labels", "predictions", "probabilities")
WEIGHT_KEYS = ("hidden_kernel", "hidden_bias", "output_kernel", "output_bias")
TRAIN_KEYS = ("history", "fit_seconds", "test_accuracy", "data_source", "data_sha256", "versions", "config")
METRICS_KEYS = ("test_accuracy", "mean_activation", "dominance", "dominant_neuron", "selectivity",
                "ablation_drop", "claim", "config", "versions", "data_source", "data_sha256", "timings")
SWEEP_KEYS = ("seeds", "widths", "recipe", "thresholds", "verdict", "provenance")


def paths(cfg: RunConfig) -> dict[str, Path]:
    names = ["model.keras", "train.json", "activations.npz", "weights.npz", "metrics.json", "sweep.json",
             "timings.json"]
    return {name.split(".")[0]: cfg.out / name for name in names}


def run_train(cfg: RunConfig) -> None:
    from nu_keras import model as mdl  # Keras is imported only by the stages that need it
    from nu_keras.data import load_mnist

    data = load_mnist(cfg.data, cfg.cache_path)
    net = mdl.build_model(cfg)
    log.info("training %d epochs, batch %d, Adam %g, seed %d (%d parameters)",
             cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.seed, net.count_params())
    fit = mdl.train(net, data, cfg)
    accuracy = mdl.evaluate(net, data)
    log.info("test accuracy %.4f after %.1f s of training", accuracy, fit["fit_seconds"])
    mdl.save_model(net, paths(cfg)["model"])
    artifacts.write_json(paths(cfg)["train"], {
        **fit, "test_accuracy": accuracy, "data_source": data.source, "data_sha256": data.sha256,
        "versions": mdl.versions(), "config": cfg.training_fields(), "parameters": int(net.count_params()),
        "summary": layer_table(net),
    })


def layer_table(net) -> list[dict]:
    """One row per layer for the Method page's model summary table."""
    return [{"name": layer.name, "type": type(layer).__name__,
             "output_shape": str(tuple(layer.output.shape)), "parameters": int(layer.count_params())}
            for layer in net.layers]


def run_collect(cfg: RunConfig) -> None:
    from nu_keras import activations, model as mdl
    from nu_keras.data import load_mnist

    net = mdl.load_model(paths(cfg)["model"])
    data = load_mnist(cfg.data, cfg.cache_path)
    acts = activations.collect(net, data.x_test, data.y_test)
    log.info("collected hidden activations %s over the test set", acts["hidden"].shape)
    artifacts.write_npz(paths(cfg)["activations"], **acts)
    artifacts.write_npz(paths(cfg)["weights"], **mdl.dense_weights(net))


def run_analyze(cfg: RunConfig) -> None:
    from nu_keras.analysis import analyze

    acts = artifacts.read_npz(paths(cfg)["activations"], ACTIVATION_KEYS)
    weights = artifacts.read_npz(paths(cfg)["weights"], WEIGHT_KEYS)
    trained = artifacts.read_json(paths(cfg)["train"], TRAIN_KEYS)
    metrics = analyze(acts, weights, cfg.dominance_threshold)
    metrics.update({
        "config": cfg.to_json(), "versions": trained["versions"], "data_source": trained["data_source"],
        "data_sha256": trained["data_sha256"], "history": trained["history"],
        "fit_seconds": trained["fit_seconds"], "parameters": trained["parameters"],
        "layers": trained["summary"], "timings": read_timings(cfg),
    })
    artifacts.write_json(paths(cfg)["metrics"], metrics)
    log.info("test accuracy %.4f; %d of 10 digits have a dominant neuron", metrics["test_accuracy"],
             len(metrics["claim"]["digits_with_dominant_neuron"]))


def run_sweep(cfg: RunConfig) -> None:
    from nu_keras.data import load_mnist
    from nu_keras.sweep import run_sweep as sweep

    data = load_mnist(cfg.data, cfg.cache_path)
    path = paths(cfg)["sweep"]
    existing = artifacts.read_json(path) if path.exists() else None
    if existing and sweep_covers(existing, cfg, data.sha256):
        log.info("reusing %s: it already holds seeds %s at widths %s with this recipe and data",
                 path, existing["seeds"], ", ".join(existing["widths"]))
        return
    artifacts.write_json(path, sweep(data, cfg))


def sweep_covers(existing: dict, cfg: RunConfig, data_sha256: str) -> bool:
    """A wider sweep already on disk answers a narrower request (e.g. `make sweep`, then `make report`)."""
    seeds = [cfg.seed + i for i in range(cfg.sweep_seeds)]
    return (existing.get("recipe") == cfg.training_fields() | {"hidden_units": cfg.hidden_units}
            and existing.get("provenance", {}).get("data_sha256") == data_sha256
            and existing.get("thresholds", {}).get("min_digits") == cfg.claim_min_digits
            and existing.get("thresholds", {}).get("min_seed_fraction") == cfg.claim_seed_fraction
            and existing.get("thresholds", {}).get("dominance") == cfg.dominance_threshold
            and existing.get("seeds", [])[: len(seeds)] == seeds
            and all(str(w) in existing.get("widths", {}) for w in cfg.sweep_widths))


def run_render(cfg: RunConfig) -> None:
    from nu_keras import charts, pages
    from nu_keras.data import load_mnist

    metrics = artifacts.read_json(paths(cfg)["metrics"], METRICS_KEYS)
    acts = artifacts.read_npz(paths(cfg)["activations"], ACTIVATION_KEYS)
    weights = artifacts.read_npz(paths(cfg)["weights"], WEIGHT_KEYS)
    images = load_mnist(cfg.data, cfg.cache_path).x_test
    sweep_path = paths(cfg)["sweep"]
    sweep = artifacts.read_json(sweep_path, SWEEP_KEYS) if sweep_path.exists() else None
    target = Path(cfg.pages_dir)
    staging = artifacts.staging_dir(target)  # pages are swapped in whole, so none is ever stale
    try:
        started = time.perf_counter()
        count = charts.render_all(metrics, acts, weights, images, cfg.examples, staging / "img", sweep)
        log.info("rendered %d charts in %.1f s", count, time.perf_counter() - started)
        written = pages.render_all(metrics, cfg.examples, cfg.project_root / "report_templates", staging, sweep)
        artifacts.swap_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote %d pages into %s", written, target)


def run_build(cfg: RunConfig) -> None:
    from nu_keras import site

    site.build(cfg)
    log.info("site built: %s", (cfg.site_dir / "index.html").resolve())


RUNNERS = {"train": run_train, "collect": run_collect, "analyze": run_analyze, "sweep": run_sweep,
           "render": run_render, "build": run_build}


def run(stages: tuple[str, ...], cfg: RunConfig) -> None:
    """Run the named stages in pipeline order, timing each into timings.json."""
    artifacts.ensure_writable(cfg.out)  # fail before minutes of work, not after
    for name in STAGES:
        if name not in stages:
            continue
        log.info("== %s ==", name)
        started = time.perf_counter()
        RUNNERS[name](cfg)
        record_timing(cfg, name, time.perf_counter() - started)


def read_timings(cfg: RunConfig) -> dict[str, float]:
    path = paths(cfg)["timings"]
    return artifacts.read_json(path) if path.exists() else {}


def record_timing(cfg: RunConfig, stage: str, seconds: float) -> None:
    artifacts.write_json(paths(cfg)["timings"], {**read_timings(cfg), stage: round(seconds, 3)})
