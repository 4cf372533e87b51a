"""Benchmark: `python -m nu_keras.bench` (or `make bench`) -> bench/results.json and a table.

Every figure is the median of `--repeats` runs, all measured in one run on one machine, so their
ratios are comparable. Targets (issue "Fast report") are printed beside the measurements; they are
checked here, not in timed tests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nu_keras.config import RunConfig, set_backend_environment

TARGETS = {
    "training_speedup": ("training speed-up over plain fit", ">= 3x", lambda v: v >= 3),
    "report_cold": ("report, cold", "<= 25 s", lambda v: v <= 25),
    "report_warm": ("report, warm (nothing changed)", "<= 5 s", lambda v: v <= 5),
    "report_template": ("report after one template change", "<= 8 s", lambda v: v <= 8),
    "publish": ("charts + pages + site build", "<= 6 s", lambda v: v <= 6),
    "peak_rss_gib": ("peak memory of the report process", "<= 1.5 GiB", lambda v: v <= 1.5),
    "seeds_ratio": ("10 seeds at width 10 / one seed", "<= 2x", lambda v: v <= 2),
}


def median_time(function, repeats: int) -> tuple[float, list]:
    """Median wall time of `function()` and the values it returned."""
    times, results = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results.append(function())
        times.append(time.perf_counter() - start)
    return statistics.median(times), results


def bench_training(data, repeats: int) -> dict:
    from nu_keras import model as mdl

    def fit(cfg):
        def run():
            net = mdl.build_model(cfg)
            with contextlib.redirect_stdout(io.StringIO()):
                seconds = mdl.train(net, data, cfg)["fit_seconds"]
            return seconds, mdl.evaluate(net, data)

        return run

    recipe = RunConfig()
    plain = recipe.replace(batch_size=32, learning_rate=1e-3, steps_per_execution=1)
    out = {}
    for name, cfg in (("recipe", recipe), ("plain", plain)):
        _, runs = median_time(fit(cfg), repeats)
        out[name] = {
            "fit_seconds": statistics.median(r[0] for r in runs),
            "test_accuracy": statistics.median(r[1] for r in runs),
            "batch_size": cfg.batch_size,
            "learning_rate": cfg.learning_rate,
            "steps_per_execution": cfg.steps_per_execution,
            "epochs": cfg.epochs,
        }
    out["speedup"] = out["plain"]["fit_seconds"] / out["recipe"]["fit_seconds"]
    return out


def bench_seeds(data, repeats: int) -> dict:
    """Ten seeds trained together as branches against one network alone: the bare fit of each, on the
    same training images and epochs (no validation pass in either)."""
    from nu_keras import model as mdl

    cfg = RunConfig()

    def one():
        with contextlib.redirect_stdout(io.StringIO()):
            return mdl.train(mdl.build_model(cfg), data, cfg, validate=False)["fit_seconds"]

    def ten():
        return mdl.fit_branches(mdl.build_branches(cfg, list(range(10)), 10), data, cfg)

    one_seconds = statistics.median(median_time(one, repeats)[1])
    ten_seconds = statistics.median(median_time(ten, repeats)[1])
    return {"one_seed_fit": one_seconds, "ten_seeds_fit": ten_seconds, "ratio": ten_seconds / one_seconds}


def bench_collect(data, model_path: Path, repeats: int) -> dict:
    from nu_keras import activations
    from nu_keras import model as mdl
    from nu_keras.analysis import forward_hidden

    net = mdl.load_model(model_path)
    weights = mdl.dense_weights(net)
    x = mdl.scale(data.x_test).reshape(len(data.x_test), -1)
    keras_seconds, _ = median_time(lambda: activations.collect(net, data.x_test, data.y_test), repeats)
    numpy_seconds, _ = median_time(lambda: forward_hidden(x, weights), max(repeats, 5))
    return {"keras_collect": keras_seconds, "numpy_forward": numpy_seconds}


def bench_publish(cfg: RunConfig, repeats: int) -> dict:
    """Charts, pages and site build from the artifacts of a finished report, each timed alone."""
    from nu_keras import artifacts, charts, pages, pipeline, site

    p = pipeline.paths(cfg)
    metrics = artifacts.read_json(p.metrics)
    sweep = artifacts.read_json(p.sweep)
    acts, weights = artifacts.read_npz(p.activations), artifacts.read_npz(p.weights)
    images = pipeline.dataset(cfg.data, cfg.cache_path).x_test
    scratch = Path(tempfile.mkdtemp(prefix="nu_keras-bench-"))
    try:

        def draw():
            shutil.rmtree(scratch / "img", ignore_errors=True)
            return charts.render_all(metrics, acts, weights, images, cfg.examples, scratch / "img", sweep)

        chart_seconds, _ = median_time(draw, repeats)
        page_seconds, _ = median_time(
            lambda: pages.render_all(metrics, cfg.examples, cfg.templates_dir, scratch, sweep), repeats
        )
        build_cfg = cfg.replace(pages_dir=scratch, site_dir=scratch.parent / f"{scratch.name}-site")
        build_seconds, _ = median_time(lambda: site.build(build_cfg), repeats)
        shutil.rmtree(build_cfg.site_dir, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "charts": chart_seconds,
        "pages": page_seconds,
        "build": build_seconds,
        "total": chart_seconds + page_seconds + build_seconds,
    }


def report_command(root: Path, templates: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nu_keras",
        "report",
        "-q",
        "--out",
        str(root / "artifacts"),
        "--pages-dir",
        str(root / "pages"),
        "--site-dir",
        str(root / "site"),
        "--templates",
        str(templates),
    ]


def timed_run(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: report failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def bench_report(repeats: int) -> tuple[dict, Path]:
    """`nu-keras report` cold, warm, and after one template change, as separate processes."""
    base = Path(tempfile.mkdtemp(prefix="nu_keras-bench-report-"))
    templates = base / "templates"
    shutil.copytree(RunConfig().templates_dir, templates)
    cold, warm, template = [], [], []
    for i in range(repeats):
        root = base / f"run{i}"
        cold.append(timed_run(report_command(root, templates)))
        warm.append(timed_run(report_command(root, templates)))
        with open(templates / "run.md.j2", "a") as handle:
            handle.write(f"\n<!-- bench edit {i} -->\n")
        template.append(timed_run(report_command(root, templates)))
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest report process
    return (
        {
            "cold": statistics.median(cold),
            "warm": statistics.median(warm),
            "template": statistics.median(template),
            "cold_runs": cold,
            "warm_runs": warm,
            "template_runs": template,
            "peak_rss_gib": peak_kib / 2**20,
        },
        base / "run0",
    )


def machine() -> dict:
    import keras
    import numpy as np

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def table(results: dict) -> str:
    r = results
    t, s, c, p, rep = r["training"], r["seeds"], r["collect"], r["publish"], r["report"]
    rows = [
        (
            "training, default recipe (fit)",
            f"{t['recipe']['fit_seconds']:.2f} s",
            f"test accuracy {t['recipe']['test_accuracy']:.4f}",
        ),
        (
            "training, plain fit (batch 32, no tricks)",
            f"{t['plain']['fit_seconds']:.2f} s",
            f"test accuracy {t['plain']['test_accuracy']:.4f}",
        ),
        ("training speed-up", f"{t['speedup']:.1f}x", _target("training_speedup", t["speedup"])),
        (
            "10 seeds together / one seed (width 10)",
            f"{s['ratio']:.2f}x",
            f"{s['ten_seeds_fit']:.2f} s vs {s['one_seed_fit']:.2f} s; " + _target("seeds_ratio", s["ratio"]),
        ),
        ("report, cold", f"{rep['cold']:.1f} s", _target("report_cold", rep["cold"])),
        ("report, warm", f"{rep['warm']:.1f} s", _target("report_warm", rep["warm"])),
        ("report, one template changed", f"{rep['template']:.1f} s", _target("report_template", rep["template"])),
        (
            "activations, Keras submodel (10 000 images)",
            f"{c['keras_collect'] * 1000:.0f} ms",
            f"numpy forward pass {c['numpy_forward'] * 1000:.1f} ms",
        ),
        ("charts", f"{p['charts']:.2f} s", ""),
        ("pages", f"{p['pages']:.2f} s", ""),
        ("site build", f"{p['build']:.2f} s", ""),
        ("charts + pages + site build", f"{p['total']:.2f} s", _target("publish", p["total"])),
        (
            "peak memory of a report process",
            f"{rep['peak_rss_gib']:.2f} GiB",
            _target("peak_rss_gib", rep["peak_rss_gib"]),
        ),
    ]
    lines = ["| measure | median | notes |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def _target(key: str, value: float) -> str:
    label, text, ok = TARGETS[key]
    return f"target {text}: {'met' if ok(value) else 'MISSED'}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nu_keras.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median; default 3)")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"), help="where to write the results")
    args = parser.parse_args(argv)
    set_backend_environment()  # as the CLI does, so in-process timings match the report's
    from nu_keras import artifacts, pipeline

    cfg = RunConfig()
    data = pipeline.dataset(cfg.data, cfg.cache_path)  # fetched once, so "cold" excludes the data fetch
    print("bench: report cold / warm / template change ...", file=sys.stderr)
    report, run_root = bench_report(args.repeats)
    run_cfg = cfg.replace(out=run_root / "artifacts", pages_dir=run_root / "pages", site_dir=run_root / "site")
    print("bench: charts, pages, site build ...", file=sys.stderr)
    publish = bench_publish(run_cfg, args.repeats)
    print("bench: activation collection ...", file=sys.stderr)
    collect = bench_collect(data, run_cfg.out / "model.keras", args.repeats)
    print("bench: training, recipe vs plain fit ...", file=sys.stderr)
    training = bench_training(data, args.repeats)
    print("bench: ten seeds together vs one ...", file=sys.stderr)
    seeds = bench_seeds(data, args.repeats)
    shutil.rmtree(run_root.parent, ignore_errors=True)
    results = {
        "machine": machine(),
        "repeats": args.repeats,
        "training": training,
        "seeds": seeds,
        "report": report,
        "collect": collect,
        "publish": publish,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    results["table"] = table(results)
    artifacts.write_json(args.out, results)
    print(results["table"])
    print(f"\nmachine: {results['machine']['cpu']}, {results['machine']['cores']} cores; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
