"""Benchmark against a baseline in the same run: `python -m nu_keras.bench` (or `make bench`).

The baseline revision (default: the last revision before the findings work, which made the report's sweep 10
seeds, each with its own data order) is
exported with `git archive` into a temporary folder; it and this working tree then run the same
commands as separate processes on the same machine, alternating (baseline, working tree, baseline,
...), so machine load hits both alike. Reported as ratios to the baseline, beside the targets; the
working tree's two Keras backends are timed side by side. Writes bench/results.json and prints tables.
Timing targets live here, not in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from nu_keras.config import BACKEND_ENVIRONMENT, PROJECT_ROOT, RunConfig

BASELINE = "d01e290"  # the last revision before the 10-seed default with each seed's own data order
# The earlier speed targets are retired: the cold report and the seed block now do more work on purpose (10
# seeds instead of 5, each reading its own batches), so they are measured, not judged; the rest must not regress.
NO_REGRESSION = 1.1  # what "no regression" allows for machine noise between alternating rounds
TARGETS = {
    "cold": ("report, cold", "the 10-seed default's cost", None),
    "publish": ("charts + pages + site build", f"<= {NO_REGRESSION}x baseline", lambda ratio: ratio <= NO_REGRESSION),
    "warm": ("report, warm (nothing changed)", f"<= {NO_REGRESSION}x baseline", lambda ratio: ratio <= NO_REGRESSION),
    "seeds": ("10 seeds together / one seed, width 10", "measured", None),
}
# Run inside a tree's own code: its `bench_seeds` (same signature in the baseline), its data loader.
SEEDS_SNIPPET = """
import json, time
from nu_keras.config import RunConfig, set_backend_environment
set_backend_environment()
start = time.perf_counter()
import keras
import_seconds = time.perf_counter() - start
from nu_keras import bench
cfg = RunConfig()
try:
    from nu_keras.data import dataset  # the working tree: the run's data from its config
    data = dataset(cfg)
except ImportError:  # trees before data.dataset: the loader was pipeline's
    from nu_keras import pipeline
    try:
        data = pipeline.dataset(cfg)
    except TypeError:
        data = pipeline.dataset(cfg.data, cfg.cache_path)  # trees before the subject/data-set concepts
result = bench.bench_seeds(data, 1)
print(json.dumps(result | {"import_keras": import_seconds, "backend": keras.backend.backend()}))
"""


def bench_seeds(data, repeats: int) -> dict:
    """Ten seeds trained together as branches against one network alone: the bare fit of each, on the
    same training images and epochs (no validation pass in either)."""
    from nu_keras import model as mdl

    cfg = RunConfig()

    def one():
        with contextlib.redirect_stdout(io.StringIO()):
            return mdl.train(mdl.build_model(cfg), data, cfg, validate=False)["fit_seconds"]

    def ten():
        return mdl.fit_block(data, cfg, 10, list(range(10)), validate=False)["fit_seconds"]

    one_seconds = statistics.median(one() for _ in range(repeats))
    ten_seconds = statistics.median(ten() for _ in range(repeats))
    return {"one_seed_fit": one_seconds, "ten_seeds_fit": ten_seconds, "ratio": ten_seconds / one_seconds}


def export_revision(revision: str, target: Path) -> Path:
    """The files of `revision` in `target`, via `git archive` (the repository itself is left as it is)."""
    done = subprocess.run(["git", "-C", str(PROJECT_ROOT), "archive", "--format=tar", revision], capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: cannot export {revision!r}: {done.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(target, filter="data")
    return target


def tree_environment(tree: Path, backend: str = "tensorflow") -> dict[str, str]:
    """The environment for a tree's processes: its own code first, and its own backend settings
    (those this process may have inherited are dropped, so each tree applies its defaults)."""
    env = {k: v for k, v in os.environ.items() if k not in BACKEND_ENVIRONMENT}
    return env | {"PYTHONPATH": str(tree), "KERAS_BACKEND": backend}


def timed(command: list[str], env: dict, cwd: Path) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system, with the processes it waited for, e.g. the chart pool), peak
    memory (GiB) of the process, and its stdout; exits the bench if it failed. On a machine shared with
    other work the wall time swings with the load; the CPU time much less."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[2:5])} failed: {stderr.strip().splitlines()[-3:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20, stdout


def cli(stage: str, root: Path, *extra: str) -> list[str]:
    folders = ["--out", str(root / "artifacts"), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]
    return [sys.executable, "-m", "nu_keras", stage, "-q", *folders, *extra]


def measure_tree(tree: Path, scratch: Path, backend: str = "tensorflow", extra: tuple[str, ...] = ()) -> dict:
    """One round for one tree: cold report, warm report, charts+pages+build again, ten seeds vs one."""
    env = tree_environment(tree, backend)
    root = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    cold, cold_cpu, cold_rss, _ = timed(cli("report", root, *extra), env, scratch)
    warm, warm_cpu, _, _ = timed(cli("report", root, *extra), env, scratch)
    render, render_cpu, _, _ = timed(cli("render", root, "--force", *extra), env, scratch)
    build, build_cpu, _, _ = timed(cli("build", root, "--force", *extra), env, scratch)
    _, _, _, printed = timed([sys.executable, "-c", SEEDS_SNIPPET], env, scratch)
    seeds = json.loads(printed.strip().splitlines()[-1])
    metrics = json.loads((root / "artifacts" / "metrics.json").read_text())
    shutil.rmtree(root, ignore_errors=True)
    return {
        "cold": cold,
        "warm": warm,
        "publish": render + build,
        "cold_cpu": cold_cpu,
        "warm_cpu": warm_cpu,
        "publish_cpu": render_cpu + build_cpu,
        "render": render,
        "build": build,
        "peak_rss_gib": cold_rss,
        "test_accuracy": metrics["test_accuracy"],
        "one_seed_fit": seeds["one_seed_fit"],
        "ten_seeds_fit": seeds["ten_seeds_fit"],
        "seeds_ratio": seeds["ratio"],
        "import_keras": seeds["import_keras"],
        "backend": seeds["backend"],
    }


def medians(rounds: list[dict]) -> dict:
    """Per measure, the median over the rounds; the rounds themselves are kept too."""
    first = rounds[0]
    summary = {k: statistics.median(r[k] for r in rounds) if isinstance(v, float) else v for k, v in first.items()}
    return summary | {"rounds": rounds}


def comparison_table(base: dict, work: dict, revision: str) -> str:
    rows = []
    for key, unit in (("cold", "s"), ("publish", "s"), ("warm", "s")):
        label, text, ok = TARGETS[key]
        ratio = work[key] / base[key]
        judged = text if ok is None else f"{text}: {'met' if ok(ratio) else 'MISSED'}"  # None: measured only
        rows.append((label, f"{base[key]:.1f} {unit}", f"{work[key]:.1f} {unit}", f"{ratio:.2f}x", judged))
        cpu = f"{base[key + '_cpu']:.1f} {unit}", f"{work[key + '_cpu']:.1f} {unit}"
        rows.append((f"{label}, CPU time", *cpu, f"{work[key + '_cpu'] / base[key + '_cpu']:.2f}x", ""))
    label, text, ok = TARGETS["seeds"]
    rows.append(
        (
            label,
            f"{base['seeds_ratio']:.2f}x ({base['ten_seeds_fit']:.1f} s / {base['one_seed_fit']:.1f} s)",
            f"{work['seeds_ratio']:.2f}x ({work['ten_seeds_fit']:.1f} s / {work['one_seed_fit']:.1f} s)",
            f"{work['seeds_ratio'] / base['seeds_ratio']:.2f}x",
            text if ok is None else f"{text}: {'met' if ok(work['seeds_ratio']) else 'MISSED'}",
        )
    )
    rows.append(
        (
            "peak memory of the cold report process",
            f"{base['peak_rss_gib']:.2f} GiB",
            f"{work['peak_rss_gib']:.2f} GiB",
            f"{work['peak_rss_gib'] / base['peak_rss_gib']:.2f}x",
            "",
        )
    )
    rows.append(
        (
            "test accuracy of the report's network",
            f"{base['test_accuracy']:.4f}",
            f"{work['test_accuracy']:.4f}",
            "",
            "",
        )
    )
    head = f"| measure | baseline {revision} | working tree | ratio | target |\n|---|---|---|---|---|\n"
    return head + "\n".join("| " + " | ".join(row) + " |" for row in rows)


def backend_table(by_backend: dict[str, dict]) -> str:
    names = list(by_backend)
    rows = [
        ("`import keras`", "import_keras", "{:.1f} s"),
        ("one seed, fit (recipe, 10 epochs)", "one_seed_fit", "{:.1f} s"),
        ("10 seeds together, fit", "ten_seeds_fit", "{:.1f} s"),
        ("10 seeds / one seed", "seeds_ratio", "{:.2f}x"),
        ("report, cold", "cold", "{:.1f} s"),
        ("report, warm", "warm", "{:.1f} s"),
        ("test accuracy of the report's network", "test_accuracy", "{:.4f}"),
    ]
    head = "| measure (working tree) | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    return head + "\n".join(
        f"| {label} | " + " | ".join(fmt.format(by_backend[n][key]) for n in names) + " |" for label, key, fmt in rows
    )


def machine() -> dict:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")), cpu
        )
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


SCALING_UNITS = (10, 64, 256)
SCALING_SNIPPET = """
import sys
from nu_keras.config import RunConfig, set_backend_environment
set_backend_environment()
import keras
from keras import layers
from nu_keras.data import dataset
data = dataset(RunConfig())
keras.utils.set_random_seed(0)
units = int(sys.argv[1])
hidden = layers.Dense(units, activation="relu", name="hidden")
output = layers.Dense(10, activation="softmax", name="output")
model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), hidden, output])
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(data.x_train / 255.0, data.y_train, epochs=1, batch_size=128, verbose=0)
model.save(sys.argv[2])
"""


def scaling(out: Path) -> int:
    """How render and build grow with the number of units: a 784-U-10 model per U (one epoch on MNIST),
    reported as a user's model; per U the time of each stage (from timings.json) and the peak memory."""
    scratch = Path(tempfile.mkdtemp(prefix="nu_keras-scaling-"))
    env, rows = tree_environment(PROJECT_ROOT), []
    try:
        for units in SCALING_UNITS:
            print(f"bench: scaling, {units} units ...", file=sys.stderr)
            model = scratch / f"dense-{units}.keras"
            timed([sys.executable, "-c", SCALING_SNIPPET, str(units), str(model)], env, scratch)
            root = scratch / f"run-{units}"
            seconds, cpu, rss, _ = timed(cli("report", root, "--model", str(model), "--layer", "hidden"), env, scratch)
            stages = json.loads((root / "artifacts" / "timings.json").read_text())
            pages = sum(1 for _ in (root / "pages").rglob("*.md"))
            rows.append(
                {"units": units, "report": seconds, "report_cpu": cpu, "peak_rss_gib": rss, "pages": pages} | stages
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = scaling_table(rows)
    from nu_keras import artifacts

    artifacts.write_json(out, {"machine": machine(), "rows": rows, "table": table})
    print(table + f"\n\nwritten to {out}")
    return 0


def scaling_table(rows: list[dict]) -> str:
    lines = [
        "| units | pages | collect | analyze | render | build | render + build per unit | report | peak memory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_unit = (r["render"] + r["build"]) / r["units"]
        lines.append(
            f"| {r['units']} | {r['pages']} | {r['collect']:.1f} s | {r['analyze']:.1f} s | {r['render']:.1f} s | "
            f"{r['build']:.1f} s | {per_unit:.2f} s | {r['report']:.1f} s | {r['peak_rss_gib']:.2f} GiB |"
        )
    return "\n".join(lines)


CONVNET_BASELINE = "4f5c627"  # the last revision before ablation ran inside the tail's graph
CONVNET_LAYER = "conv2d_1"
# Keras's "Simple MNIST convnet" example, trained one epoch on 6 000 MNIST images (timing does not depend on
# the weights); prints what the arithmetic estimate needs: the tail's multiply-adds per ablated copy.
CONVNET_SNIPPET = """
import json, sys
from nu_keras.config import RunConfig, set_backend_environment
set_backend_environment()
import keras
from keras import layers
from nu_keras.data import dataset
data = dataset(RunConfig())
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((28, 28, 1)),
    layers.Conv2D(32, 3, activation="relu", name="conv2d"),
    layers.MaxPooling2D(2, name="max_pooling2d"),
    layers.Conv2D(64, 3, activation="relu", name="conv2d_1"),
    layers.MaxPooling2D(2, name="max_pooling2d_1"),
    layers.Flatten(name="flatten"),
    layers.Dropout(0.5, name="dropout"),
    layers.Dense(10, activation="softmax", name="dense"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(data.x_train[:6000, ..., None] / 255.0, data.y_train[:6000], epochs=1, batch_size=128, verbose=0)
model.save(sys.argv[1])
after = model.layers[[item.name for item in model.layers].index(sys.argv[2]) + 1 :]
macs = 0
for item in after:  # multiply-adds per image; pooling, Flatten and Dropout have none
    if isinstance(item, layers.Dense):
        macs += int(item.kernel.shape[0] * item.kernel.shape[1])
    elif isinstance(item, layers.Conv2D):
        macs += int(item.output.shape[1] * item.output.shape[2]) * int(item.kernel.numpy().size)
units = model.get_layer(sys.argv[2]).filters
kernel = list(model.get_layer("dense").kernel.shape)
print(json.dumps({"tail_macs": macs, "units": units, "images": len(data.x_test), "dense_kernel": kernel}))
"""


# Run inside a tree's own code after its report: collect once more in one process, with activations.conv_extras
# and the three costly functions it calls wrapped in timers, so collect splits into the read-out + ablation (the
# rest of collect) and the conv extras; the class mean maps summed inside the read-out pass (add_class_sums
# outside conv_extras) count as extras. Prints {} for a tree without conv_extras (the baseline).
CONVNET_PARTS_SNIPPET = """
import json, sys, time
from nu_keras.config import RunConfig, set_backend_environment
set_backend_environment()
import keras
from nu_keras import activations
from nu_keras.data import dataset
if not hasattr(activations, "conv_extras"):
    print("{}")
    raise SystemExit
seconds, within = {}, []
def timer(name):
    function = getattr(activations, name)
    def timed(*args, **kwargs):
        within.append(name)
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            within.pop()
            folded = name == "add_class_sums" and not within
            key = "class_sums_in_read_out" if folded else name
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start
    setattr(activations, name, timed)
for name in ("conv_extras", "channel_maps", "class_mean_maps", "feature_pictures", "add_class_sums"):
    if hasattr(activations, name):
        timer(name)
cfg = RunConfig()
data = dataset(cfg)
model = keras.saving.load_model(sys.argv[1])
start = time.perf_counter()
activations.collect(model, sys.argv[2], data.x_test, data.y_test, cfg.pixels)
seconds["collect"] = time.perf_counter() - start
print(json.dumps(seconds))
"""
CONVNET_GOAL = 5  # issue 20: the read-out + ablation within 5x of the arithmetic estimate


def matmul_throughput(shape: tuple[int, int, int], repeats: int = 5) -> float:
    """Multiply-adds per second of a float32 (m, k) @ (k, n) product in numpy on this machine (best of
    `repeats`): the square one is the machine's peak, the tail-shaped one (many ablated copies times the
    last Dense layer's few outputs) what a tail's matrix product can reach."""
    import numpy as np

    m, k, n = shape
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return m * k * n / best


def convnet(args) -> int:
    """The Simple MNIST convnet reported with --layer conv2d_1, on the baseline revision and the working tree
    (alternating rounds), beside the arithmetic estimate of its ablation: the tail's multiply-adds per ablated
    copy x copies (units x test images) x 2 fills, divided by a measured matmul throughput."""
    scratch = Path(tempfile.mkdtemp(prefix="nu_keras-convnet-"))
    try:
        model = scratch / "convnet.keras"
        env = tree_environment(PROJECT_ROOT)
        _, _, _, printed = timed([sys.executable, "-c", CONVNET_SNIPPET, str(model), CONVNET_LAYER], env, scratch)
        shape = json.loads(printed.strip().splitlines()[-1])
        baseline = export_revision(args.baseline, scratch / "baseline")
        trees = {f"baseline {args.baseline}": (baseline, "tensorflow"), "working tree": (PROJECT_ROOT, "tensorflow")}
        if not args.no_jax:
            trees["working tree, JAX"] = (PROJECT_ROOT, "jax")
        rounds = {name: [] for name in trees}
        for i in range(args.repeats):
            for name, (tree, backend) in trees.items():
                print(f"bench: convnet round {i + 1} of {args.repeats}: {name} ...", file=sys.stderr)
                rounds[name].append(convnet_round(tree, backend, model, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    copies = shape["units"] * shape["images"] * 2
    macs = shape["tail_macs"] * copies
    peak = matmul_throughput((2048, 2048, 2048))
    tail_shaped = matmul_throughput((16384, *shape["dense_kernel"]))  # 16 384 ablated copies at once
    estimate = {"peak": macs / peak, "tail-shaped": macs / tail_shaped}
    summary = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in rounds.items()}
    table = convnet_table(summary, estimate, macs, peak, tail_shaped)
    results = {
        "machine": machine(),
        "baseline": args.baseline,
        "layer": CONVNET_LAYER,
        "shape": shape,
        "ablation_macs": macs,
        "matmul_macs_per_second": {"peak": peak, "tail-shaped": tail_shaped},
        "estimate_seconds": estimate,
        "trees": summary,
        "rounds": rounds,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "table": table,
    }
    from nu_keras import artifacts

    out = args.out.with_name("convnet.json")
    artifacts.write_json(out, results)
    print(table + f"\n\nwritten to {out}")
    return 0


def convnet_round(tree: Path, backend: str, model: Path, scratch: Path) -> dict:
    """One cold report of the convnet on one tree: its wall and CPU seconds, and its collect stage's own."""
    root = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    extra = ("--model", str(model), "--layer", CONVNET_LAYER, "--backend", backend)
    env = tree_environment(tree, backend)
    seconds, cpu, rss, _ = timed(cli("report", root, *extra), env, scratch)
    stages = json.loads((root / "artifacts" / "timings.json").read_text())
    shutil.rmtree(root, ignore_errors=True)
    _, _, _, printed = timed([sys.executable, "-c", CONVNET_PARTS_SNIPPET, str(model), CONVNET_LAYER], env, scratch)
    return (
        {"collect": stages["collect"], "render": stages["render"], "report": seconds, "report_cpu": cpu}
        | {"peak_rss_gib": rss}
        | convnet_parts(json.loads(printed.strip().splitlines()[-1]))
    )


def convnet_parts(seconds: dict) -> dict:
    """The timed collect's parts (CONVNET_PARTS_SNIPPET's seconds): the read-out + ablation (collect without
    the conv extras) and the extras with their three costly pieces; nothing for a tree without extras."""
    if not seconds:
        return {}
    folded = seconds.get("class_sums_in_read_out", 0.0)  # the class mean maps summed in the read-out pass
    return {
        "readout_ablation": seconds["collect"] - seconds["conv_extras"] - folded,
        "extras": seconds["conv_extras"] + folded,
        "top_maps": seconds.get("channel_maps", 0.0),
        "class_mean_maps": seconds.get("class_mean_maps", 0.0) + folded,
        "feature_visualisation": seconds.get("feature_pictures", 0.0),
    }


def convnet_table(summary: dict, estimate: dict, macs: int, peak: float, tail_shaped: float) -> str:
    """Per tree: the collect stage (from the report's timings), then the same collect timed in one process in
    its parts: the read-out + ablation, judged against the estimate (a tree without conv extras: its whole
    collect stage), and the conv extras (top-image maps, class mean maps, feature visualisation)."""
    base_name = next(iter(summary))
    base = summary[base_name]
    lines = [
        f"ablation arithmetic: {macs / 1e9:.1f} G multiply-adds (tail per copy x units x test images x 2 fills); "
        f"matmul on this machine: {peak / 1e9:.0f} G/s square, {tail_shaped / 1e9:.0f} G/s tail-shaped; "
        f"estimate {estimate['peak']:.2f} s at the square rate, {estimate['tail-shaped']:.2f} s at the tail-shaped; "
        f"goal: read-out + ablation within {CONVNET_GOAL}x of it",
        "",
        "| tree | collect | vs baseline | read-out + ablation | vs estimate (square / tail-shaped) | "
        "conv extras (top maps / class mean maps / feature vis.) | render | report | report CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        versus = f"{base['collect'] / row['collect']:.1f}x faster" if name != base_name else ""
        judged = row.get("readout_ablation", row["collect"])
        estimated = f"{judged / estimate['peak']:.0f}x / {judged / estimate['tail-shaped']:.1f}x"
        extras = (
            f"{row['extras']:.1f} s ({row['top_maps']:.1f} / {row['class_mean_maps']:.1f} / "
            f"{row['feature_visualisation']:.1f} s)"
            if "extras" in row
            else ""
        )
        part = f"{judged:.1f} s" + ("" if "extras" in row else " (all of collect)")
        lines.append(
            f"| {name} | {row['collect']:.1f} s | {versus} | {part} | {estimated} | {extras} | {row['render']:.1f} s | "
            f"{row['report']:.1f} s | {row['report_cpu']:.1f} s |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nu_keras.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help=f"git revision to compare against (default {BASELINE})")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds per tree (median; default 2)")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX column of the backend table")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"), help="where to write the results")
    parser.add_argument(
        "--convnet",
        action="store_true",
        help=f"instead: Keras's Simple MNIST convnet reported with --layer {CONVNET_LAYER}, collect and report "
        f"against --baseline (default here {CONVNET_BASELINE}) and the ablation's arithmetic (bench/convnet.json)",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="instead: render and build time of a user's Dense layer of 10, 64 and 256 units (bench/scaling.json)",
    )
    args = parser.parse_args(argv)
    from nu_keras.data import dataset

    cfg = RunConfig()
    dataset(cfg)  # fetched once before timing, so "cold" excludes the data fetch
    if args.scaling:
        return scaling(args.out.with_name("scaling.json"))
    if args.convnet:
        args.baseline = args.baseline or CONVNET_BASELINE
        return convnet(args)
    args.baseline = args.baseline or BASELINE
    scratch = Path(tempfile.mkdtemp(prefix="nu_keras-bench-"))
    try:
        baseline = export_revision(args.baseline, scratch / "baseline")
        base_rounds, work_rounds, jax_rounds = [], [], []
        for i in range(args.repeats):
            print(f"bench: round {i + 1} of {args.repeats}: baseline {args.baseline} ...", file=sys.stderr)
            base_rounds.append(measure_tree(baseline, scratch))
            print(f"bench: round {i + 1} of {args.repeats}: working tree ...", file=sys.stderr)
            work_rounds.append(measure_tree(PROJECT_ROOT, scratch))
            if not args.no_jax:
                print(f"bench: round {i + 1} of {args.repeats}: working tree on JAX ...", file=sys.stderr)
                jax_rounds.append(measure_tree(PROJECT_ROOT, scratch, "jax", ("--backend", "jax")))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base, work = medians(base_rounds), medians(work_rounds)
    by_backend = {"tensorflow": work} | ({"jax": medians(jax_rounds)} if jax_rounds else {})
    results = {
        "machine": machine(),
        "baseline": args.baseline,
        "repeats": args.repeats,
        "baseline_tree": base,
        "working_tree": by_backend,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    results["table"] = comparison_table(base, work, args.baseline)
    results["backend_table"] = backend_table(by_backend)
    from nu_keras import artifacts

    artifacts.write_json(args.out, results)
    print(results["table"] + "\n\n" + results["backend_table"])
    print(f"\nmachine: {results['machine']['cpu']}, {results['machine']['cores']} cores; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
