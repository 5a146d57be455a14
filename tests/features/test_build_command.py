"""``crm features build --online``: the online snapshot is as of the date asked for."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from crm.cli import app
from features.online import load_online_snapshot


def test_the_online_snapshot_is_as_of_the_latest_date_given(tiny_data: Path, tmp_path: Path):
    args = ["features", "build", "--data", str(tiny_data), "--out", str(tmp_path), "--online"]
    result = CliRunner().invoke(app, [*args, "--as-of", "2025-06-01,2025-09-01"])
    assert result.exit_code == 0, result.output
    assert str(load_online_snapshot(tmp_path / "online").as_of).startswith("2025-09-01")
