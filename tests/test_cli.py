"""The command line's ``--config FILE``: the file sets a job's fields, a flag given on the command
line overrides it, and an unknown key is one clear error (exit 2)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import typer
import yaml
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from crm.apps import user_errors
from crm.cli import app
from crm.config import config_option, job_config


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path
    as_of: date
    trials: int = 20
    register_model: bool = False
    experiment: str = "toy"  # a field without a flag


def toy_app() -> tuple[typer.Typer, list[ToyConfig]]:
    """A one-command app in the shape of the job commands; it records the configs it builds."""
    seen: list[ToyConfig] = []
    toy = typer.Typer()

    @toy.command()
    @user_errors
    def train(
        ctx: typer.Context,
        data: Path = typer.Option(...),
        as_of: str = typer.Option(...),
        trials: int = typer.Option(20, min=1),
        register_model: bool = typer.Option(False, "--register/--no-register"),
        config: Path | None = config_option(),
    ) -> None:
        seen.append(job_config(ctx, ToyConfig))

    return toy, seen


def write_yaml(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def said(result) -> str:
    """The output as one line, without the wrapping and the frame of an error box."""
    return " ".join(result.output.replace("│", " ").split())


def test_the_file_sets_fields_and_flags_given_override_it(tmp_path: Path):
    toy, seen = toy_app()
    job = tmp_path / "job.yaml"
    job.write_text("data: d\nas_of: 2025-06-01\ntrials: 5\nexperiment: x\n")  # an unquoted date
    result = CliRunner().invoke(toy, ["--config", str(job), "--register"])
    assert result.exit_code == 0, result.output
    # the file supplies the required options, a field without a flag, and beats a flag's default
    assert seen[-1] == ToyConfig(
        data=Path("d"), as_of=date(2025, 6, 1), trials=5, register_model=True, experiment="x"
    )
    result = CliRunner().invoke(toy, ["--config", str(job), "--trials", "7", "--data", "e"])
    assert result.exit_code == 0, result.output
    assert (seen[-1].trials, seen[-1].data, seen[-1].experiment) == (7, Path("e"), "x")


def test_without_a_file_the_flags_and_their_defaults_make_the_config(tmp_path: Path):
    toy, seen = toy_app()
    result = CliRunner().invoke(toy, ["--data", "d", "--as-of", "2025-06-01"])
    assert result.exit_code == 0, result.output
    assert seen == [ToyConfig(data=Path("d"), as_of=date(2025, 6, 1))]
    job = write_yaml(tmp_path / "job.yaml", {"data": "d"})
    assert CliRunner().invoke(toy, ["--config", str(job), "--as-of", "2025-06-01"]).exit_code == 0
    # a file that supplied --data once does not make it optional for the next command line
    missing = CliRunner().invoke(toy, ["--as-of", "2025-06-01"])
    assert missing.exit_code == 2 and "Missing option '--data'" in said(missing)


def test_an_unknown_key_or_a_bad_value_names_the_file_and_the_key(tmp_path: Path):
    toy, seen = toy_app()
    job = write_yaml(tmp_path / "job.yaml", {"data": "d", "as_of": "2025-06-01", "trails": 5})
    result = CliRunner().invoke(toy, ["--config", str(job)])
    assert result.exit_code == 2
    assert f"{job}: unknown key 'trails'" in said(result)
    bad = write_yaml(tmp_path / "bad.yaml", {"data": "d", "as_of": "June", "trials": 5})
    result = CliRunner().invoke(toy, ["--config", str(bad)])
    assert result.exit_code == 2 and f"{bad}: as_of:" in said(result)
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- data\n")
    result = CliRunner().invoke(toy, ["--config", str(not_a_mapping)])
    assert result.exit_code == 2 and "must hold a mapping" in said(result)
    assert seen == []


def test_data_synth_reads_its_config_and_a_flag_wins(tmp_path: Path):
    job = write_yaml(
        tmp_path / "synth.yaml", {"preset": "tiny", "seed": 3, "customers": 300, "out": str(tmp_path / "d")}
    )
    result = CliRunner().invoke(app, ["data", "synth", "--config", str(job), "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "synthetic data (tiny, seed 5)" in said(result)
    assert "customers │ 300 " in result.output
    assert (tmp_path / "d" / "customers.parquet").is_file()


@pytest.mark.parametrize(
    ("command", "required"),
    [
        (["data", "synth"], {"out": "d"}),
        (["data", "validate"], {"data": "d"}),
        (["features", "build"], {"data": "d", "as_of": ["2025-06-01"], "out": "o"}),
        (["train", "churn"], {"data": "d", "as_of": "2025-06-01"}),
        (["train", "recommender"], {"data": "d"}),
        (["demo"], {}),
        (["churn-list"], {"out": "o.csv"}),
        (["recommend"], {"customers": "c.csv", "out": "o.csv"}),
    ],
)
def test_every_job_command_refuses_an_unknown_key(tmp_path: Path, command: list[str], required: dict):
    job = write_yaml(tmp_path / "job.yaml", {**required, "colour": "blue"})
    result = CliRunner().invoke(app, [*command, "--config", str(job)])
    assert result.exit_code == 2, result.output
    assert f"{job}: unknown key 'colour'" in said(result)
