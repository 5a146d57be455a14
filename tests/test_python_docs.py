"""docs/python.md is a working example: its Python blocks run, one after another as a reader runs
them, in a folder of their own with the page's private store, so the page cannot go stale."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[str]:
    """The page's Python blocks, each padded with empty lines so that an error names its line in
    the page."""
    return ["\n" * text.count("\n", 0, found.start(1)) + found.group(1) for found in BLOCK.finditer(text)]


def test_the_page_calls_each_job_with_its_typed_config():
    code = "\n".join(python_blocks(PAGE.read_text()))
    for call in ("SynthConfig(", "FeatureBuildConfig(", "ChurnTrainConfig(", "promote(", "ChurnListConfig("):
        assert call in code


def test_the_python_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # the page's relative out/python lands here
    page: dict = {"__name__": "docs.python"}
    for block in python_blocks(PAGE.read_text()):
        exec(compile(block, str(PAGE), "exec"), page)  # noqa: S102 - the page's own code
    work = tmp_path / "out" / "python"
    assert (work / "mlflow" / "mlflow.db").is_file()  # its private store, not the session's
    listed = pd.read_csv(page["retention"].out)
    assert 0 < len(listed) <= 100 and (listed["churn_probability"] >= 0.2).all()
    scores = page["scores"]
    assert len(scores) == len(page["snapshot"]) and scores["churn_probability"].between(0, 1).all()
