"""Stage caching: unchanged inputs are reused, a changed seed retrains, a changed template re-renders."""

import shutil

import pytest

from nu_keras import cache, data, pipeline, sweep_file, train
from nu_keras.config import RunConfig


def test_why_run_names_the_part_that_changed():
    old = cache.fingerprint({"seed": 0}, {"model": "a"}, ("cache.file_hash",))
    assert cache.why_run(old, old, outputs_ready=True, force=False) is None
    assert cache.why_run(old, old, outputs_ready=True, force=True) == "--force"
    assert cache.why_run(old, None, outputs_ready=True, force=False) == "no earlier run recorded"
    assert "missing" in cache.why_run(old, old, outputs_ready=False, force=False)
    seed = cache.fingerprint({"seed": 1}, {"model": "a"}, ("cache.file_hash",))
    assert cache.why_run(seed, old, True, False) == "config changed: seed"
    model = cache.fingerprint({"seed": 0}, {"model": "b"}, ("cache.file_hash",))
    assert cache.why_run(model, old, True, False) == "inputs changed: model"
    code = cache.fingerprint({"seed": 0}, {"model": "a"}, ("cache.tree_hash",))
    assert cache.why_run(code, old, True, False) == "the stage code changed"


def stage_code(cfg: RunConfig) -> dict[str, str]:
    return {stage: pipeline.fingerprint(stage, cfg)["code"] for stage in (*pipeline.STAGE_NAMES, "charts")}


@pytest.mark.parametrize(
    "module, stale",
    [
        # the sweep reaches it through robustness.py; collect's modules do not import it; publishing reads the record
        ("analysis.py", {"analyze", "sweep"}),
        ("ablation.py", {"collect", "analyze", "sweep"}),  # collect computes the tables
        ("render.py", {"render"}),  # the charts are the figure code's (charts/): a page edit reuses them
        ("robustness.py", {"analyze", "sweep"}),  # analyze runs the single-network controls
        ("dynamics.py", {"analyze", "sweep"}),  # analyze measures the epochs; the sweep reaches it through analysis
        ("charts/units.py", {"render", "charts"}),  # a module of a subpackage
        ("charts/__init__.py", {"render", "charts"}),
        ("model.py", {"train", "collect", "sweep"}),
        ("site.py", {"build"}),
        # a stage body's own module is its code: its helpers and what it imports at the top
        ("train.py", {"train", "collect", "sweep"}),  # collect loads the model through it, the sweep its block
        ("activations.py", {"collect"}),
        ("sweep_file.py", {"render"}),  # render publishes sweep.json only if it matches the report
    ],
)
def test_editing_a_module_re_runs_every_stage_that_imports_it_and_no_other(
    package_copy, tmp_path, fake_npz, module, stale
):
    cfg = RunConfig(out=tmp_path / "a", data=fake_npz)
    before = stage_code(cfg)
    with open(package_copy / module, "a", encoding="utf-8") as source:
        source.write("\n# an edit\n")
    after = stage_code(cfg)
    assert {stage for stage in before if before[stage] != after[stage]} == stale


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the templates and mkdocs.yml, so a test can edit a template without touching the repo."""
    root = tmp_path_factory.mktemp("project")
    source = RunConfig().project_root
    shutil.copytree(source / "report_templates", root / "report_templates")
    shutil.copy(source / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(source / "docs" / "overrides", root / "docs" / "overrides")
    return root


@pytest.fixture(scope="module")
def fake_mnist_module(tmp_path_factory):
    import numpy as np
    from conftest import labels_with_counts

    from nu_keras import data

    y_train = labels_with_counts(data.TRAIN_COUNTS, data.FIRST_TRAIN_LABELS)
    y_test = labels_with_counts(data.TEST_COUNTS)
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(path, x_train=prototypes[y_train], y_train=y_train, x_test=prototypes[y_test], y_test=y_test)
    return path


def config(project, fake_mnist_module, tmp, **changes):
    settings = dict(
        data=fake_mnist_module,
        epochs=1,
        batch_size=512,
        sweep_seeds=2,
        examples=1,  # one example image per class page: a figure less costly to draw
        out=tmp / "artifacts",
        pages_dir=tmp / "pages",
        site_dir=tmp / "site",
        project_root=project,
        templates=project / "report_templates",
    )
    return RunConfig(**(settings | changes))


def test_caching_reuses_retrains_and_rerenders_the_right_stages(project, fake_mnist_module, tmp_path, monkeypatch):
    data_file = tmp_path / "mnist-copy.npz"
    shutil.copyfile(fake_mnist_module, data_file)
    cfg = config(project, data_file, tmp_path)
    first = pipeline.run(pipeline.STAGE_NAMES, cfg)
    assert all(outcome.startswith("ran") for outcome in first.values())

    with monkeypatch.context() as warm:  # a warm run takes the data's hash from stages.json, unread
        warm.setattr(data, "_dataset", lambda *args: pytest.fail("the data was read"))
        assert set(pipeline.run(pipeline.STAGE_NAMES, cfg).values()) == {"reused"}

    with open(project / "report_templates" / "run.md.j2", "a") as template:
        template.write("\nEdited after the first run.\n")
    after_edit = pipeline.run(pipeline.STAGE_NAMES, cfg)
    assert [s for s, o in after_edit.items() if o != "reused"] == ["render", "build"]
    assert "Edited after the first run." in (cfg.site_dir / "run.html").read_text()

    new_seed = pipeline.run(pipeline.STAGE_NAMES, cfg.replace(seed=1))
    assert new_seed["train"] == "ran (config changed: seed, trained_with)"  # its block starts at the new seed
    assert all(outcome.startswith("ran") for outcome in new_seed.values())

    forced = pipeline.run(("analyze",), cfg.replace(seed=1, force=True))
    assert forced == {"analyze": "ran (--force)"}

    import numpy as np

    arrays = dict(np.load(data_file))
    arrays["x_test"][0, 0, 0] ^= 1  # one pixel of the file that served: its data hash must be taken anew
    np.savez(data_file, **arrays)
    data._dataset.cache_clear()
    assert pipeline.run(("train",), cfg.replace(seed=1)) == {"train": "ran (inputs changed: data)"}


def test_one_fit_serves_the_report_and_the_sweeps_first_block(project, fake_mnist_module, tmp_path, monkeypatch):
    import numpy as np

    from nu_keras import artifacts
    from nu_keras import model as mdl

    fits = []
    real_fit = mdl.fit_block
    monkeypatch.setattr(mdl, "fit_block", lambda *args, **kw: fits.append(args[3]) or real_fit(*args, **kw))
    cfg = config(project, fake_mnist_module, tmp_path, sweep_seeds=3)
    pipeline.run(pipeline.STAGE_NAMES, cfg)
    assert fits == [[0, 1, 2]]  # trained once, by the train stage; the sweep measured that block
    network = mdl.dense_weights(mdl.load_model(cfg.out / "model.keras"))
    block = mdl.load_block(cfg.out / "branches.npz", train.block_recipe(cfg, data.dataset(cfg)))
    for key, value in network.items():
        np.testing.assert_array_equal(block["trained"][0][key], value, err_msg=key)  # the same network, bit for bit
    sweep = artifacts.read_json(cfg.out / "sweep.json")
    assert [m["seed"] for m in sweep["widths"]["10"]["models"]] == [0, 1, 2]

    # the same sweep from scratch, its block trained by the sweep itself, gives the same numbers
    alone = cfg.replace(out=tmp_path / "sweep-alone")
    pipeline.run(("sweep",), alone)
    assert fits == [[0, 1, 2], [0, 1, 2]]
    assert untimed(artifacts.read_json(alone.out / "sweep.json")) == untimed(sweep)

    # a block trained by another recipe is not taken for this one's
    assert (
        mdl.load_block(cfg.out / "branches.npz", train.block_recipe(cfg.replace(epochs=2), data.dataset(cfg))) is None
    )


def untimed(value):
    """A JSON value without its wall-clock entries."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in ("fit_seconds", "task_seconds")}
    return [untimed(v) for v in value] if isinstance(value, list) else value


def test_a_wider_sweep_on_disk_answers_a_narrower_request(project, fake_mnist_module, tmp_path):
    wide = config(project, fake_mnist_module, tmp_path, sweep_widths=(5, 10), sweep_seeds=3)
    pipeline.run(("sweep",), wide)
    narrow = wide.replace(sweep_widths=(10,), sweep_seeds=2)
    assert pipeline.run(("sweep",), narrow) == {"sweep": "reused"}
    wider = wide.replace(sweep_seeds=4)
    assert pipeline.run(("sweep",), wider)["sweep"].startswith("ran")


def test_the_backend_is_part_of_every_stage_fingerprint(project, fake_mnist_module, tmp_path):
    """A seed gives other weights on another backend: a JAX run must not reuse TensorFlow's artifacts."""
    cfg = config(project, fake_mnist_module, tmp_path, backend="tensorflow")
    other = cfg.replace(backend="jax")
    for stage in pipeline.STAGE_NAMES:
        ours, theirs = pipeline.fingerprint(stage, cfg), pipeline.fingerprint(stage, other)
        assert ours["config"]["backend"] == "tensorflow" and theirs["config"]["backend"] == "jax", stage
        assert cache.why_run(theirs, ours, outputs_ready=True, force=False) == "config changed: backend", stage
    sweep = pipeline.fingerprint("sweep", cfg)
    assert cache.why_run(pipeline.fingerprint("sweep", cfg.replace(sweep_block_seeds=2)), sweep, True, False) == (
        "config changed: sweep_block_seeds"
    )


def test_a_sweep_of_another_recipe_data_or_seed_is_left_off_the_site():
    trained = {"config": RunConfig().training_fields(), "data_sha256": "d"}
    sweep = {"recipe": RunConfig().training_fields(), "seeds": [0, 1], "provenance": {"data_sha256": "d"}}
    assert sweep_file.matches_report(trained, sweep)
    assert not sweep_file.matches_report(trained, sweep | {"recipe": RunConfig(epochs=3).training_fields()})
    assert not sweep_file.matches_report(trained, sweep | {"provenance": {"data_sha256": "other"}})
    assert not sweep_file.matches_report(trained, sweep | {"seeds": [5, 6]})
    assert sweep_file.matches_report(trained, sweep | {"recipe": RunConfig(hidden_units=20).training_fields()})
