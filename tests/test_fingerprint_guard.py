"""Guards that replace memory: every RunConfig field reaches some stage's fingerprint or is exempt with a
reason (a field left out would silently reuse stale results), and editing the analysis re-runs `analyze`
and what follows it, never `collect` (which loads Keras) or `train`."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nu_keras import pipeline
from nu_keras.config import BACKENDS, RunConfig

USER_MODEL = Path("user-model.keras")  # never read here: a fingerprint holds its path and its file's hash


def changed_values(base: RunConfig, other_data: Path, tmp: Path) -> dict:
    """Per RunConfig field, another valid value than `base`'s."""
    return {
        "seed": 1,
        "data_order_seed": 7,
        "epochs": 2,
        "batch_size": 64,
        "learning_rate": 1e-3,
        "validation_size": 1000,
        "steps_per_execution": 8,
        "hidden_units": 12,
        "backend": next(b for b in BACKENDS if b != base.backend),
        "examples": 3,
        "dominance_threshold": 0.6,
        "paper_accuracy": 0.9,
        "sweep_seeds": 3,
        "sweep_widths": (10, 20),
        "sweep_block_seeds": 2,
        "claim_min_classes": 7,
        "claim_seed_fraction": 0.7,
        "privileged_percentile": 0.9,
        "privileged_seed_fraction": 0.7,
        "rotation_null_samples": 200,
        "specificity_min_classes": 7,
        "specificity_seed_fraction": 0.7,
        "dataset": "mnist",  # the same file, validated as MNIST rather than read as a user's own data
        "data": other_data,
        "model": USER_MODEL,
        "out": tmp / "other-artifacts",
        "pages_dir": tmp / "other-pages",
        "site_dir": tmp / "other-site",
        "project_root": tmp / "other-project",
        "templates": tmp / "other-templates",
        "figure_format": "svg",
        "force": True,
        "scheduler": "local:2",
        "cache_path": tmp / "other-cache.npz",
    }


def variants(base: RunConfig, other_data: Path, tmp: Path) -> dict[str, tuple[RunConfig, RunConfig]]:
    """Per RunConfig field, a valid config and the same config with only that field changed. `layer` and
    `pixels` apply to a user's model only, so they are changed on one."""
    pairs = {
        name: (base, base.replace(**{name: value})) for name, value in changed_values(base, other_data, tmp).items()
    }
    users = base.replace(model=USER_MODEL)
    pairs["layer"] = (users, users.replace(layer="dense"))
    pairs["pixels"] = (users, users.replace(pixels="raw"))
    return pairs


def stage_prints(cfg: RunConfig) -> dict[str, dict]:
    return {stage: pipeline.fingerprint(stage, cfg) for stage in pipeline.STAGE_NAMES}


def unfingerprinted(pairs: dict[str, tuple[RunConfig, RunConfig]]) -> list[str]:
    """The guard: the fields, exempt ones aside, whose change leaves every stage's fingerprint as it was."""
    return sorted(
        name
        for name, (before, after) in pairs.items()
        if name not in pipeline.FINGERPRINT_EXEMPT and stage_prints(before) == stage_prints(after)
    )


@pytest.fixture
def pairs(tmp_path, fake_npz, fake_mnist):
    other = dict(fake_mnist)
    other["x_test"] = other["x_test"].copy()
    other["x_test"][0, 0, 0] ^= 1  # other data: one pixel differs
    other_data = tmp_path / "other.npz"
    np.savez(other_data, **other)
    return variants(RunConfig(data=fake_npz, out=tmp_path / "artifacts"), other_data, tmp_path)


def test_every_field_has_a_changed_value_here_and_every_exemption_names_a_field(pairs):
    fields = {field.name for field in dataclasses.fields(RunConfig)}
    assert set(pairs) == fields  # a new RunConfig field needs a changed value in `changed_values`
    assert set(pipeline.FINGERPRINT_EXEMPT) <= fields
    assert all(reason.strip() for reason in pipeline.FINGERPRINT_EXEMPT.values())


def test_every_run_config_field_reaches_a_stage_fingerprint_or_is_exempt_with_a_reason(pairs):
    assert unfingerprinted(pairs) == []


@pytest.mark.parametrize("stage, field", [("analyze", "paper_accuracy"), ("build", "site_dir")])
def test_the_guard_names_a_field_a_stage_leaves_out(monkeypatch, pairs, stage, field):
    """A field only one stage holds, dropped from that stage's config, is reported by the guard."""
    entry = pipeline.BY_NAME[stage]

    def without_field(cfg: RunConfig) -> dict:
        return {name: value for name, value in entry.config(cfg).items() if name != field}

    monkeypatch.setitem(pipeline.BY_NAME, stage, dataclasses.replace(entry, config=without_field))
    assert unfingerprinted(pairs) == [field]


def test_editing_the_analysis_changes_the_fingerprint_of_analyze_but_not_of_collect_or_train(
    package_copy, tmp_path, fake_npz
):
    cfg = RunConfig(data=fake_npz, out=tmp_path / "artifacts")
    before = stage_prints(cfg)
    with open(package_copy / "analysis.py", "a", encoding="utf-8") as source:
        source.write("\n# an edit\n")
    after = stage_prints(cfg)
    assert after["analyze"]["code"] != before["analyze"]["code"]
    assert after["collect"] == before["collect"] and after["train"] == before["train"]


@pytest.fixture
def tiny_user_model(tmp_path):
    """A user's untrained 784-8-10 Dense model and 300 random 28x28 images of 10 classes: seconds to report."""
    import keras
    from keras import layers

    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(10, dtype=np.uint8), 30)
    images = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "tiny.npz", x_train=images, y_train=labels, x_test=images[:100], y_test=labels[:100])
    keras.utils.set_random_seed(0)
    hidden = layers.Dense(8, activation="relu", name="hidden")
    model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), hidden, layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "tiny.keras")
    return tmp_path / "tiny.keras", tmp_path / "tiny.npz"


def test_a_run_after_editing_the_analysis_reuses_train_and_collect_and_runs_analyze(
    package_copy, tmp_path, tiny_user_model
):
    model, data = tiny_user_model
    places = {"out": tmp_path / "artifacts", "pages_dir": tmp_path / "pages", "site_dir": tmp_path / "site"}
    cfg = RunConfig(model=model, layer="hidden", data=data, rotation_null_samples=100, **places)
    stages = ("train", "collect", "analyze")
    assert all(outcome.startswith("ran") for outcome in pipeline.run(stages, cfg).values())
    with open(package_copy / "analysis.py", "a", encoding="utf-8") as source:
        source.write("\n# an edit\n")
    again = pipeline.run(stages, cfg)
    assert again == {"train": "reused", "collect": "reused", "analyze": "ran (the stage code changed)"}


def test_fingerprinting_every_stage_imports_neither_keras_nor_scipy(fake_npz, tmp_path):
    """A warm report fingerprints every stage and checks the sweep's outputs: the stages' bodies are named,
    not imported, so nothing costs Keras's or SciPy's import time until a stage runs."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from nu_keras import pipeline\n"
        "from nu_keras.config import RunConfig\n"
        f"cfg = RunConfig(data=Path({str(fake_npz)!r}), out=Path({str(tmp_path / 'artifacts')!r}))\n"
        "for stage in pipeline.STAGE_NAMES:\n"
        "    pipeline.fingerprint(stage, cfg)\n"
        "    pipeline.outputs_ready(stage, cfg, None)\n"
        "print(sorted(name for name in ('keras', 'scipy', 'matplotlib', 'mkdocs') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
