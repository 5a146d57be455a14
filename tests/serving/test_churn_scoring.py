"""Churn lists: columns, ordering, filters."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from features.contract import open_validated
from features.errors import UserError
from features.snapshot import build_snapshot
from features.vocab import LIFECYCLE_STAGES
from serving.churn_scoring import Calibration, ChurnModel, churn_list, risk_band


@pytest.fixture(scope="module")
def model(churn_run):
    return mlflow.pyfunc.load_model(churn_run.model_uri).unwrap_python_model()


@pytest.fixture(scope="module")
def snapshot(tiny_data: Path) -> pd.DataFrame:
    return build_snapshot(open_validated(tiny_data), "2026-01-01")


def test_churn_list_is_ranked_by_expected_loss(model, snapshot):
    ranked = churn_list(model, snapshot, limit=50)
    assert list(ranked["rank"]) == list(range(1, 51))
    assert ranked["value_at_risk"].is_monotonic_decreasing
    assert (ranked["value_at_risk"] == ranked["churn_probability"] * ranked["customer_value"]).all()
    for column in ("customer_id", "risk_band", "top_reasons", "suggested_action", "lifecycle_stage"):
        assert ranked[column].notna().all()


def test_the_retention_list_leaves_lapsed_customers_out_unless_asked(model, snapshot):
    lapsed = set(snapshot.loc[snapshot["lifecycle_stage"] == "lapsed", "customer_id"])
    assert lapsed, "the tiny preset has lapsed customers at the end of the data"
    retention = churn_list(model, snapshot, limit=len(snapshot), sort="probability")
    assert not lapsed & set(retention["customer_id"])
    assert len(retention) == len(snapshot) - len(lapsed)
    asked = churn_list(model, snapshot, limit=len(snapshot), stages=["lapsed"])
    assert set(asked["customer_id"]) == lapsed and set(asked["lifecycle_stage"]) == {"lapsed"}
    # the sorting is the same with or without the stages
    both = churn_list(model, snapshot, limit=len(snapshot), sort="probability", stages=list(LIFECYCLE_STAGES))
    assert both["churn_probability"].is_monotonic_decreasing
    assert (
        both[both["lifecycle_stage"] != "lapsed"]["customer_id"].tolist() == retention["customer_id"].tolist()
    )


def test_stage_filter_errors_are_one_sentence(model, snapshot):
    with pytest.raises(UserError, match="Unknown lifecycle stage 'gone'"):
        churn_list(model, snapshot, stages=["gone"])
    with pytest.raises(UserError, match="rebuild it"):
        churn_list(model, snapshot.drop(columns="lifecycle_stage"))


def test_sort_by_probability_and_minimum(model, snapshot):
    ranked = churn_list(model, snapshot, limit=30, sort="probability", min_probability=0.6)
    assert ranked["churn_probability"].is_monotonic_decreasing
    assert (ranked["churn_probability"] >= 0.6).all()


def test_segment_filters(model, snapshot):
    ranked = churn_list(model, snapshot, limit=500, tiers=["gold"], owns=["wearable"])
    assert set(ranked["member_tier"]) == {"gold"}
    owners = set(snapshot.loc[snapshot["owns_wearable"] == 1, "customer_id"])
    assert set(ranked["customer_id"]) <= owners
    with pytest.raises(UserError, match="Unknown sort"):
        churn_list(model, snapshot, sort="alphabetical")


def test_risk_bands():
    assert list(risk_band(pd.Series([0.1, 0.5, 0.74, 0.75, 0.99]).to_numpy())) == [
        "low", "medium", "medium", "high", "high"
    ]  # fmt: skip


def test_contributions_add_up_to_the_raw_score(model, snapshot):
    x = model.matrix(snapshot.head(300))
    contrib = model.contributions(x)
    assert contrib.shape == (300, len(model.features))
    np.testing.assert_allclose(contrib.sum(axis=1) + model.expected_logit(), model.raw_logit(x), atol=1e-9)
    assert model.contributions(x[:0]).shape == (0, len(model.features))
    # a feature no tree splits on moves no one
    used = set(np.flatnonzero(model.booster().feature_importance("split")))
    unused = [j for j in range(len(model.features)) if j not in used]
    assert unused and (contrib[:, unused] == 0).all()
    # scoring with reasons takes its probability from the same pass
    scored = model.score(snapshot.head(300), with_reasons=True)
    np.testing.assert_allclose(scored["churn_probability"], model.probability(snapshot.head(300)), atol=1e-12)


def test_contributions_follow_the_trees_on_a_stump():
    # one split on the second feature: rows left of it get (left - root), right ones (right - root)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 1] > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 2, "verbose": -1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=3)
    model = ChurnModel(booster.model_to_string(), ["a", "b"], {}, Calibration())
    contrib = model.contributions(x)
    assert (contrib[:, 0] == 0).all()
    assert (contrib[y == 1, 1] > 0).all() and (contrib[y == 0, 1] < 0).all()
    raw = booster.predict(x, raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1) + model.expected_logit(), raw)


def test_cli_churn_list_takes_repeatable_stages(churn_run, tiny_data: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from crm.cli import app
    from features.online import build_online_snapshot

    online = build_online_snapshot(tiny_data, tmp_path / "online")
    out = tmp_path / "list.csv"
    args = ["churn-list", "--snapshot", str(online), "--out", str(out), "--top", "5000"]
    result = CliRunner().invoke(app, [*args, "--stage", "lapsed", "--stage", "new"])
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(out)["lifecycle_stage"]) == {"lapsed", "new"}
    assert CliRunner().invoke(app, args).exit_code == 0
    assert "lapsed" not in set(pd.read_csv(out)["lifecycle_stage"])
    wrong = CliRunner().invoke(app, [*args, "--stage", "gone"])
    assert wrong.exit_code == 2 and "'gone' is not one of" in " ".join(wrong.output.split())


def test_the_lists_value_customers_by_the_forecast_and_say_so(serving_env, tmp_path):
    from serving.batch import ChurnListConfig, WinbackListConfig, write_churn_list, write_winback_list

    common = {"snapshot": serving_env.snapshot, "store": serving_env.store, "top": 50}
    forecast = write_churn_list(ChurnListConfig(out=tmp_path / "a.csv", **common))
    assert forecast.value_model and forecast.value_model.startswith("models:/value/")
    past = write_churn_list(
        ChurnListConfig(out=tmp_path / "b.csv", value_model_uri="models:/value@nope", **common)
    )
    assert past.value_model is None
    by_forecast = pd.read_csv(tmp_path / "a.csv").set_index("customer_id")["customer_value"]
    snapshot = pd.read_parquet(serving_env.snapshot / "snapshot.parquet").set_index("customer_id")
    by_past = pd.read_csv(tmp_path / "b.csv").set_index("customer_id")["customer_value"]
    assert (by_past.round(2) == snapshot.loc[by_past.index, "customer_value"].round(2)).all()
    assert not (by_forecast.round(2) == snapshot.loc[by_forecast.index, "customer_value"].round(2)).all()

    winback = write_winback_list(WinbackListConfig(out=tmp_path / "w.parquet", **common))
    listed = pd.read_parquet(tmp_path / "w.parquet")
    assert winback.customers == len(listed) > 0
    assert set(snapshot.loc[listed["customer_id"], "lifecycle_stage"]) == {"lapsed"}
    with pytest.raises(UserError, match="needs a value model"):
        write_winback_list(
            WinbackListConfig(out=tmp_path / "x.csv", value_model_uri="models:/value@nope", **common)
        )
