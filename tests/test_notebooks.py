"""The notebooks as committed (nbmake executes them, see pyproject.toml): no outputs, and a reading
under every figure or table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def test_the_reports_are_there():
    names = [p.stem for p in NOTEBOOKS]
    assert names[:4] == ["01_behaviour_logs", "02_churn_report", "03_recommender_report", "04_uplift_report"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path):
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] == "code":
            stripped = not cell["outputs"] and cell["execution_count"] is None
            assert stripped, f"{path.name} cell {i}: commit it without outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_is_read_out(path: Path):
    """A cell that draws is followed by a paragraph on how to read it (and a cell printing what this
    run's numbers say)."""
    nb = cells(path)
    for i, cell in enumerate(nb):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and (".plot" in source or "plt.subplots" in source):
            reading, printed = nb[i + 1 : i + 3]
            assert reading["cell_type"] == "markdown" and "How to read it" in "".join(reading["source"]), i
            assert printed["cell_type"] == "code" and "say(" in "".join(printed["source"]), i
