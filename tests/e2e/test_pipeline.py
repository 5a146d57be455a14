"""The whole job on the tiny preset: pipeline, reuse on a second run, then every endpoint over HTTP
with the curl commands `crm demo` prints, against the server `crm demo` starts."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import mlflow
from crm.commands.demo import curl_examples
from crm.pipeline import DemoConfig, run
from features.store import Store
from tests.server import crm_server

pytestmark = pytest.mark.slow


@pytest.fixture()
def private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A store of the test's own; the environment names it too, for the `crm demo` it starts."""
    store = Store.at(tmp_path / "store")
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    previous = mlflow.get_tracking_uri()
    yield store
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous)


def test_tiny_pipeline_end_to_end_and_served(tmp_path: Path, private_store: Store):
    cfg = DemoConfig(
        preset="tiny", seed=11, work_dir=tmp_path / "demo", churn_trials=1, recommender_epochs=2,
        uplift_trials=1, store=private_store,
    )  # fmt: skip
    first = run(cfg)
    assert first.skipped == []
    assert first.output("promote churn", "champion") == "1"
    assert first.output("promote recommender", "champion") == "1"
    assert first.output("promote value", "champion") == "1"
    churn_list = pd.read_csv(first.output("churn list", "churn_list"))
    assert len(churn_list) == cfg.churn_top and churn_list["value_at_risk"].is_monotonic_decreasing
    assert first.output("churn list", "valued_by") == "models:/value/1"
    winback = pd.read_csv(first.output("win-back list", "winback_list"))
    assert len(winback) > 0 and winback["winback_value"].is_monotonic_decreasing
    quality = json.loads(Path(first.output("list quality", "metrics_json")).read_text())
    assert quality["as_of"] == first.output("train churn", "holdout")
    assert 0 <= quality["retention_by_probability"]["true_leavers_top_1000"] <= 1
    assert quality["true_hazard"]["true_leavers_top_1000"] > quality["base_rate_alive"]
    assert quality["winback"]["lapsed_customers"] > 0
    assert first.output("promote uplift", "champion") == "1"
    plan = pd.read_csv(first.output("retention plan", "retention_plan"))
    assert plan["cost"].sum() <= cfg.plan_budget and (plan["expected_value_saved"] > 0).all()
    assert first.output("retention plan", "treated") == int((plan["arm"] == "treatment").sum())

    # a second run reuses every finished step
    again = run(cfg)
    assert again.skipped == [s.name for s in first.steps]

    online = first.work_dir / "online"
    customer = pd.read_parquet(online / "snapshot.parquet", columns=["customer_id"])["customer_id"].iloc[0]
    env = {**os.environ, "CRM_RELOAD_POLL_SECONDS": "0"}
    env.pop("CRM_API_TOKEN", None)  # no token
    # what `make demo` does: the same command again reuses the pipeline, then serves
    demo_args = ("--preset", "tiny", "--seed", "11", "--work-dir", str(cfg.work_dir))
    demo_args += ("--trials", "1", "--epochs", "2", "--uplift-trials", "1")
    with crm_server(env, tmp_path / "server.log", *demo_args, command="demo") as base:
        port = int(base.rsplit(":", 1)[1])
        answers = []
        for line in curl_examples(port, customer).splitlines():
            out = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, (line, out.stderr)
            answers.append(
                json.loads(out.stdout) if out.stdout.strip().startswith(("{", "[")) else out.stdout
            )
    _, known, unknown, batch, scores, ranked, winback_answer, plan_answer = answers
    assert known["fallback"] is False and len(known["items"]) == 5
    assert unknown["fallback"] is True and len(unknown["items"]) == 3
    assert len(batch["results"]) == 2
    assert scores["scores"][0]["customer_id"] == customer
    assert all(c["churn_probability"] >= 0.5 for c in ranked["customers"])
    assert len(winback_answer["customers"]) == 5 and winback_answer["value_version"] == "1"
    assert plan_answer["uplift_version"] == "1" and plan_answer["spend"] <= 500
    assert plan_answer["treated"] + plan_answer["control"] == len(plan_answer["customers"])


def test_an_interrupted_run_resumes_without_cleanup(tmp_path: Path, private_store: Store):
    cfg = DemoConfig(
        preset="tiny", seed=12, work_dir=tmp_path / "demo", churn_trials=1, recommender_epochs=1,
        uplift_trials=1, store=private_store,
    )  # fmt: skip
    # a crash in the middle of simulation leaves a half-written temporary folder behind
    (cfg.work_dir / "data.tmp" / "events").mkdir(parents=True)
    (cfg.work_dir / "data.tmp" / "events" / "part-00000.parquet").write_bytes(b"half")
    result = run(cfg)
    assert not (cfg.work_dir / "data.tmp").exists()
    assert result.output("validate", "rejected") == {"events": 0, "customers": 0, "items": 0, "campaigns": 0}
