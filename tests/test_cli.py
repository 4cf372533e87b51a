"""The command line: bad input ends in one line on stderr and exit code 2, and loses nothing built."""

import numpy as np
import pytest
from conftest import mark_as_built

from nu_keras import artifacts, folders
from nu_keras.cli import build_parser, main


def run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.err


def assert_one_line_error(code, err, fragment):
    lines = [line for line in err.splitlines() if line.startswith("nu-keras: error")]
    assert code == 2 and len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--epochs", "0"], "--epochs must be at least 1"),
        (["report", "--examples", "21"], "--examples must be between 1 and 20"),
        (["report", "--examples", "0"], "--examples must be between 1 and 20"),
        (["train", "--batch-size", "-3"], "--batch-size must be between 1 and 60000"),
        (["train", "--learning-rate", "0"], "--learning-rate must be a positive finite number"),
        (["train", "--learning-rate", "nan"], "--learning-rate must be a positive finite number"),
        (["train", "--seed", "-1"], "--seed must be between 0 and 2**32 - 1"),
        (["train", "--seed", str(2**32)], "--seed must be between 0 and 2**32 - 1"),
        (["train", "--epochs", "ten"], "invalid int value"),
        (["fly"], "invalid choice"),
        (["sweep", "--widths", "5,x"], "expected comma-separated whole numbers"),
        (["sweep", "--widths", "0,10"], "--widths must be whole numbers between 2 and 512"),
        (["sweep", "--seeds", "0"], "--seeds must be between 1 and 50"),
        (["sweep", "--seeds-per-block", "0"], "--seeds-per-block must be between 1 and 50"),
        (["sweep", "--scheduler", "local:0"], "--scheduler must be a Dask scheduler address"),
        (["sweep", "--scheduler", "local:two"], "--scheduler must be a Dask scheduler address"),
        (["report", "--backend", "torch"], "invalid choice"),
        (["report", "--dataset", "cifar"], "invalid choice"),
        (["report", "--pixels", "half"], "invalid choice"),
        (["report", "--layer", "dense"], "--layer names a layer of --model; give --model too"),
        (["report", "--pixels", "raw"], "--pixels applies to --model"),
        (["report", "--model", ""], "an empty path is not allowed"),
        ([], "required"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(argv, fragment, capsys):
    code, err = run(argv, capsys)
    assert_one_line_error(code, err, fragment)


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "--help"])
    text = capsys.readouterr().out
    flags = ("--seed", "--epochs", "--batch-size", "--examples", "--out", "--data", "--backend", "--scheduler")
    for flag in (*flags, "--dataset", "--model", "--layer", "--pixels"):
        assert flag in text


def test_collect_without_a_model_is_a_clear_error(tmp_path, capsys):
    code, err = run(["collect", "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "model.keras does not exist")


def test_unreadable_data_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"\x00" * 100)
    code, err = run(["train", "--dataset", "mnist", "--data", str(bad), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_error(code, err, "is not a usable MNIST npz")
    code, err = run(["train", "--data", str(bad), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_error(code, err, "is not a usable data file")
    assert "is not an .npz archive" in err


def test_metrics_of_another_schema_is_a_clear_error_and_keeps_what_was_built(tmp_path, capsys):
    artifacts.write_json(tmp_path / "metrics.json", {"test_accuracy": 0.9})  # a record of no schema version
    artifacts.write_npz(tmp_path / "activations.npz", units=np.zeros((2, 10)))
    mark_as_built(tmp_path, "artifacts")
    before = (tmp_path / "metrics.json").read_bytes()
    code, err = run(["render", "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "schema version None")
    assert (tmp_path / "metrics.json").read_bytes() == before


def test_analyze_with_truncated_activations_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "activations.npz").write_bytes(b"PK\x03\x04truncated")
    mark_as_built(tmp_path, "artifacts")
    code, err = run(["analyze", "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "activations.npz is unreadable")


def test_output_folder_that_cannot_be_created_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = run(["train", "--out", str(blocker / "out")], capsys)
    assert_one_line_error(code, err, "cannot create folder")


def test_build_without_pages_is_a_clear_error(tmp_path, capsys):
    code, err = run(["build", "--out", str(tmp_path / "out"), "--pages-dir", str(tmp_path / "none")], capsys)
    assert_one_line_error(code, err, "holds no pages")


def test_an_unusable_pages_folder_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "pages"
    blocker.write_text("a file where the pages folder should go")
    code, err = run(["report", "--out", str(tmp_path / "out"), "--pages-dir", str(blocker)], capsys)
    assert_one_line_error(code, err, "exists and is not a folder")
    assert not (tmp_path / "out" / "model.keras").exists()


def test_a_swap_interrupted_between_its_renames_is_restored(tmp_path):
    target = tmp_path / "site"
    (tmp_path / ".site.old-123").mkdir()
    (tmp_path / ".site.old-123" / "index.html").write_text("previous site")
    folders.write_marker(tmp_path / ".site.old-123", "site", folders.manifest(tmp_path / ".site.old-123"))
    folders.clean_leftovers(target, "site")  # the next run starts by putting the old site back
    assert (target / "index.html").read_text() == "previous site"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]
