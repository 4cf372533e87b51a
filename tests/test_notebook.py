"""The example notebook runs, top to bottom, in a fresh kernel: it cannot rot unnoticed.

It trains a small model for a few seconds on MNIST read offline, and uses only the public API; this test
checks that it shows what it says: three figures and one table, and no error.
"""

from __future__ import annotations

from conftest import REPO

NOTEBOOK = REPO / "docs" / "examples" / "explore-a-layer.ipynb"


def test_the_example_notebook_runs_and_shows_three_figures_and_a_table(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # its own working folder: whatever the notebook writes stays out of the checkout
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    figures = [output for output in outputs if "image/png" in output.get("data", {})]
    tables = [
        output for output in outputs if "| unit | preferred class" in output.get("data", {}).get("text/markdown", "")
    ]
    assert len(figures) == 3 and len(tables) == 1
    assert tables[0]["data"]["text/markdown"].count("\n") == 2 + 16 - 1  # header, rule, one row per unit
