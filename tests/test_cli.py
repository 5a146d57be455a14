"""The command line: ``--config FILE`` (the file sets a job's fields, a flag given on the command
line overrides it, and an unknown key is one clear error, exit 2); a quiet output unless
``--verbose``; plain progress lines off a terminal; ``--version`` and ``-h``; the API's names,
choices and limits; ``crm recommend`` on the online snapshot; ``crm demo``'s folder and summary."""

from __future__ import annotations

import io
import logging
import os
import shlex
import warnings
from datetime import date
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import typer
import yaml
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from crm.apps import CommandConsole, user_errors
from crm.cli import app
from crm.config import config_option, job_config
from features.errors import UserError
from serving.schemas import MAX_BATCH, MAX_K


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


# -- a quiet, honest command line ---------------------------------------------------------------


def test_version_and_h_on_every_level():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"crm {version('crm-ml')}"
    for command in ([], ["train"], ["train", "churn"], ["churn-list"], ["demo"]):
        result = CliRunner().invoke(app, [*command, "-h"])
        assert result.exit_code == 0, result.output
        assert f"Usage: crm {' '.join(command)}".strip() in said(result)


def noisy_synth(monkeypatch: pytest.MonkeyPatch) -> dict:
    """``crm data synth`` with a job that warns and logs as MLflow does, and one warning of the
    project's own; it records the environment it ran in."""
    seen: dict = {}

    def run(cfg, progress: bool = False) -> SimpleNamespace:
        hint = "Hint: Inferred schema contains integer column(s)."
        warnings.warn_explicit(hint, UserWarning, "mlflow/types/utils.py", 1, module="mlflow.types.utils")
        warnings.warn_explicit("one of ours", UserWarning, "features/job.py", 1, module="features.job")
        logging.getLogger("mlflow.tracking").info("Registered model 'churn' already exists.")
        seen["progress bars"] = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
        return SimpleNamespace(tables={}, events=0, seconds=0.0)

    monkeypatch.setattr("features.synth.run", run)
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    return seen


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_warnings_and_info_logs_are_off_unless_verbose(
    verbose: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    seen = noisy_synth(monkeypatch)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    mlflow_logger.setLevel(logging.INFO)  # as MLflow sets it by default
    mlflow_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            args = ["--verbose"] * verbose + ["data", "synth", "--out", str(tmp_path / "d")]
            result = CliRunner().invoke(app, args)
    finally:
        mlflow_logger.removeHandler(handler)
        mlflow_logger.setLevel(level)
    assert result.exit_code == 0, result.output
    shown = {str(w.message) for w in caught}
    assert "one of ours" in shown  # the project's own warnings are always shown
    assert ("Hint: Inferred schema contains integer column(s)." in shown) is verbose
    assert any("already exists" in r.getMessage() for r in records) is verbose
    assert (seen["progress bars"] == "false") is not verbose
    # and all is as it was once the command is done
    assert logging.root.manager.disable == logging.NOTSET and mlflow_logger.level == level
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ


def test_progress_is_plain_lines_where_output_is_not_a_terminal():
    out = io.StringIO()
    console = CommandConsole(file=out, force_terminal=False, width=100)
    with console.status("training the churn model") as status:
        status.update("churn: trial 1/3")
        status.update("churn: trial 1/3")  # a repeat is not a new line
        status.update("churn: trial 2/3")
    lines = [line.strip().rsplit(" (", 1)[0] for line in out.getvalue().splitlines()]
    assert lines == ["training the churn model", "churn: trial 1/3", "churn: trial 2/3"]
    assert "\x1b" not in out.getvalue()
    terminal = CommandConsole(file=io.StringIO(), force_terminal=True)
    assert type(terminal.status("spinning")).__name__ == "Status"  # rich's spinner


def fake_job(monkeypatch: pytest.MonkeyPatch, target: str, **result: object) -> list:
    """Replace job function ``target`` by one that records the configuration it is given."""
    seen: list = []
    monkeypatch.setattr(target, lambda cfg: seen.append(cfg) or SimpleNamespace(out=cfg.out, **result))
    return seen


# each list command, its job function, and the fields of the job's result that it prints
LISTS = {
    "churn-list": ("serving.batch.write_churn_list", dict(customers=0, value_at_risk=0, value_model=None)),
    "winback-list": ("serving.batch.write_winback_list", dict(customers=0, winback_value=0, value_model="v")),
}


@pytest.mark.parametrize("command", list(LISTS))
def test_the_lists_say_min_probability_as_the_api_does(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target, result = LISTS[command]
    seen = fake_job(monkeypatch, target, **result)
    shown = said(CliRunner().invoke(app, [command, "-h"]))
    assert "--min-probability" in shown and "--min-prob " not in shown.replace("--min-probability", "")
    base = [command, "--out", str(tmp_path / "list.csv"), "--snapshot", str(tmp_path)]
    for flag in ("--min-probability", "--min-prob"):  # the old spelling still works, unlisted
        done = CliRunner().invoke(app, [*base, flag, "0.3"])
        assert done.exit_code == 0, done.output
        assert seen[-1].min_probability == 0.3
    job = write_yaml(tmp_path / "job.yaml", {"min_probability": 0.1})
    assert CliRunner().invoke(app, [*base, "--config", str(job), "--min-prob", "0.4"]).exit_code == 0
    assert seen[-1].min_probability == 0.4  # given under either name, the flag beats the file
    assert CliRunner().invoke(app, [*base, "--config", str(job)]).exit_code == 0
    assert seen[-1].min_probability == 0.1


@pytest.mark.parametrize(
    "args",
    [
        ["churn-list", "--tier", "golden"],
        ["churn-list", "--stage", "gone"],
        ["winback-list", "--tier", "golden"],
        ["churn-list", "--top", str(MAX_BATCH + 1)],
        ["winback-list", "--top", str(MAX_BATCH + 1)],
        ["recommend", "--customers", "c.csv", "--k", str(MAX_K + 1)],
        ["recommend", "--customers", "c.csv", "--k", "0"],
    ],
)
def test_a_word_outside_the_vocabulary_or_a_number_past_the_apis_limit_is_refused(args: list[str]):
    result = CliRunner().invoke(app, [*args, "--out", "o.csv"])
    assert result.exit_code == 2 and "Invalid value" in said(result), result.output


def test_the_vocabularies_reach_the_job_as_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    seen = fake_job(monkeypatch, LISTS["churn-list"][0], **LISTS["churn-list"][1])
    args = ["churn-list", "--out", str(tmp_path / "l.csv"), "--snapshot", str(tmp_path)]
    done = CliRunner().invoke(app, [*args, "--tier", "gold", "--tier", "unknown", "--stage", "lapsed"])
    assert done.exit_code == 0, done.output
    assert (seen[-1].tiers, seen[-1].stages) == (["gold", "unknown"], ["lapsed"])
    assert all(type(word) is str for word in [*seen[-1].tiers, *seen[-1].stages])


def test_recommend_reads_the_online_snapshot_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    seen = fake_job(
        monkeypatch, "serving.batch.batch_recommend", customers=0, rows=0, fallback=0, seconds=0.0,
        preview=None,
    )  # fmt: skip
    shown = said(CliRunner().invoke(app, ["recommend", "-h"]))
    assert "--snapshot" in shown and "--online-snapshot" not in shown
    base = ["recommend", "--customers", "c.csv", "--out", str(tmp_path / "r.csv")]
    online = tmp_path / "online"
    monkeypatch.setenv("CRM_ONLINE_SNAPSHOT", str(online))
    missing = CliRunner().invoke(app, base)  # no snapshot there: said, and none used
    assert missing.exit_code == 0 and seen[-1].online_snapshot is None
    assert f"online snapshot at {online}: recommending from the purchases" in said(missing)
    online.mkdir()
    assert CliRunner().invoke(app, base).exit_code == 0
    assert seen[-1].online_snapshot == online  # as the service and the churn list do
    other = tmp_path / "other"
    for flag in ("--snapshot", "--online-snapshot"):  # the old spelling still works, unlisted
        assert CliRunner().invoke(app, [*base, flag, str(other)]).exit_code == 0
        assert seen[-1].online_snapshot == other


def test_demo_writes_to_a_folder_of_its_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from crm.pipeline import DemoConfig

    assert DemoConfig().work_dir == Path("out/demo")
    assert DemoConfig(preset="tiny").work_dir == Path("out/tiny")
    assert DemoConfig(preset="tiny", work_dir=tmp_path).work_dir == tmp_path
    seen: list = []

    def stop(cfg, console=None):
        seen.append(cfg)
        raise UserError("stopped before the pipeline")

    monkeypatch.setattr("crm.pipeline.run", stop)
    assert CliRunner().invoke(app, ["demo", "--preset", "tiny", "--no-serve"]).exit_code == 2
    assert seen[-1].work_dir == Path("out/tiny")
    demo = ["demo", "--preset", "tiny", "--work-dir", str(tmp_path), "--no-serve"]
    assert CliRunner().invoke(app, demo).exit_code == 2
    assert seen[-1].work_dir == tmp_path


def test_the_demo_refuses_a_busy_port_before_its_pipeline(monkeypatch: pytest.MonkeyPatch):
    import socket

    ran: list = []
    monkeypatch.setattr("crm.pipeline.run", lambda cfg, console=None: ran.append(cfg))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = CliRunner().invoke(app, ["demo", "--preset", "tiny", "--port", str(port)])
    assert done.exit_code == 2 and ran == []  # not minutes of pipeline first
    assert f"Port {port} on 127.0.0.1 is already in use" in done.output


def finished_demo(work: Path):
    """A demo result whose steps wrote the lists and an online snapshot of one customer."""
    from crm.pipeline import DemoResult, StepRecord

    (work / "online").mkdir(parents=True)
    pd.DataFrame({"customer_id": ["C0000001"]}).to_parquet(work / "online" / "snapshot.parquet")
    result = DemoResult(work_dir=work)
    result.steps.append(StepRecord("churn list", "k", 1.0, {"churn_list": str(work / "churn_list.csv")}))
    result.steps.append(
        StepRecord("win-back list", "k", 1.0, {"winback_list": str(work / "winback_list.csv")})
    )
    return result


def test_the_demo_ends_with_the_store_it_used_and_the_command_that_serves(
    tmp_path: Path, store, monkeypatch: pytest.MonkeyPatch
):
    result = finished_demo(tmp_path / "tiny")
    monkeypatch.setattr("crm.pipeline.run", lambda cfg, console=None: result)
    done = CliRunner().invoke(app, ["demo", "--preset", "tiny", "--no-serve", "--port", "3123"])
    assert done.exit_code == 0, done.output
    lines = dict(
        line.split(":", 1) for line in done.output.splitlines() if ":" in line and "curl" not in line
    )
    assert lines["MLflow store"].strip() == store.tracking  # the store of the environment, not ./mlflow
    assert store.tracking in lines["browse it"]
    serve = shlex.split(lines["serve"])
    env = dict(word.split("=", 1) for word in serve if "=" in word and not word.startswith("-"))
    assert env == store.env()
    online = tmp_path / "tiny" / "online"
    assert serve[len(env) :] == ["crm", "serve", "--snapshot", str(online), "--port", "3123"]
    # the command it prints is one `crm serve` takes
    started: list = []
    monkeypatch.setattr("crm.commands.serve.start_server", lambda *args, **kw: started.append(args))
    assert CliRunner().invoke(app, serve[len(env) + 1 :]).exit_code == 0
    assert started == [(3123, "127.0.0.1", online)]


def test_the_default_store_needs_no_variables_to_serve(tmp_path: Path):
    from crm.commands.demo import end_summary
    from features.store import Store

    summary = end_summary(finished_demo(tmp_path / "demo"), Store(), 3000)
    serve = next(line for line in summary.splitlines() if line.startswith("serve:"))
    assert serve.split(":", 1)[1].split()[:2] == ["crm", "serve"]
