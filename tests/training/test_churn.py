"""Churn model: smoke train on tiny, behaviour of the trained model, the metrics JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from features.actions import ACTION_NAMES, ACTIONS, DEFAULT_ACTION, reason_is_shown, suggest_action
from features.contract import open_validated
from features.errors import UserError
from features.labels import churn_training_set
from tests.conftest import CHURN_AS_OF
from training.churn import ChurnTrainConfig, schedule


@pytest.fixture(scope="module")
def model(churn_run):
    return mlflow.pyfunc.load_model(churn_run.model_uri).unwrap_python_model()


@pytest.fixture(scope="module")
def holdout(tiny_data: Path, churn_run) -> pd.DataFrame:
    return churn_training_set(open_validated(tiny_data), [CHURN_AS_OF], label=churn_run.label)


def test_smoke_train_beats_the_recency_baseline_and_stays_below_the_oracle(churn_run):
    m = churn_run.metrics
    assert churn_run.label == "activity"  # the tiny preset's events carry engagement
    assert m["roc_auc"] > m["baseline_recency_roc_auc"]
    assert m["roc_auc"] < m["oracle_roc_auc"] + 0.02
    assert 0 < m["brier"] < 0.25 and m["lift_top_decile"] > 1


def test_the_lifecycle_stage_is_a_list_attribute_not_a_model_input(model):
    assert "lifecycle_stage" not in model.features and "lifecycle_stage" not in model.categorical_levels
    assert "days_since_last_event" in model.features


@pytest.mark.parametrize("label", ["activity", "purchase"])
def test_the_oracle_exists_for_each_label_and_beats_chance(tiny_data: Path, label: str):
    from training.churn import oracle_auc

    as_of = pd.Timestamp("2025-07-01").to_pydatetime()
    frame = churn_training_set(open_validated(tiny_data), [as_of], label=label)
    assert oracle_auc(tiny_data, frame, as_of, 90, label) > 0.7


def test_the_label_is_left_to_the_data_unless_given(tiny_data: Path, tmp_path: Path):
    from tests.features.handlog import write_log

    con = open_validated(tiny_data)
    cfg = ChurnTrainConfig(data=tiny_data, as_of="2025-10-01")
    assert cfg.label is None and cfg.with_label(con).label == "activity"
    assert cfg.model_copy(update={"label": "purchase"}).with_label(con).label == "purchase"
    purchases = [("A", "1997-01-01", "purchase", None, 1, 10.0, None)]
    cdnow_like = open_validated(write_log(tmp_path / "cdnow", purchases))
    assert ChurnTrainConfig(data=tmp_path, as_of="1998-01-01").with_label(cdnow_like).label == "purchase"
    with pytest.raises(ValueError, match="label"):
        ChurnTrainConfig(data=tmp_path, as_of="1998-01-01", label="silence")


def test_training_dates_are_before_validation_before_holdout(churn_run):
    train = churn_run.as_of_dates["train"]
    (valid,) = churn_run.as_of_dates["validation"]
    (holdout,) = churn_run.as_of_dates["holdout"]
    assert max(train) < valid < holdout == CHURN_AS_OF
    # the validation labels end where the holdout begins: 90 days
    assert (pd.Timestamp(holdout) - pd.Timestamp(valid)).days == 90


def test_training_labels_end_before_the_validation_fold_where_history_allows():
    cfg = ChurnTrainConfig(data=Path("."), as_of="2025-10-02", horizon_days=90, n_train_dates=3)
    train, valid, holdout = schedule(cfg, pd.Timestamp("2024-01-01").to_pydatetime())
    assert valid == pd.Timestamp("2025-07-04") and holdout == pd.Timestamp("2025-10-02")
    # the latest training label window [t, t + 90 days) ends at the validation as-of date
    assert [f"{d:%Y-%m-%d}" for d in train] == ["2025-02-04", "2025-03-06", "2025-04-05"]
    # one year of history and a 181-day horizon (CDNOW): no room to keep them apart, so overlap
    short = ChurnTrainConfig(data=Path("."), as_of="1998-01-01", horizon_days=181, n_train_dates=3)
    train, valid, _ = schedule(short, pd.Timestamp("1997-01-01").to_pydatetime())
    assert train and max(train) < valid and max(train) + timedelta(days=181) > valid


def test_no_history_for_the_schedule_is_a_clear_error():
    cfg = ChurnTrainConfig(data=Path("."), as_of="2024-03-01")
    with pytest.raises(UserError, match="Not enough history"):
        schedule(cfg, pd.Timestamp("2024-01-01").to_pydatetime())


@pytest.mark.parametrize(
    "feature", ["days_since_last_purchase", "days_since_last_event", "service_tickets_90d"]
)
def test_more_inactivity_or_tickets_never_lowers_risk(model, holdout: pd.DataFrame, feature: str):
    rows = holdout.sample(40, random_state=0).reset_index(drop=True)
    grid = np.linspace(0, 400, 21) if feature.startswith("days") else np.arange(0, 8)
    probabilities = []
    for value in grid:
        probabilities.append(model.probability(rows.assign(**{feature: value})))
    curve = np.vstack(probabilities)  # (grid, customers)
    assert (np.diff(curve, axis=0) >= -1e-12).all()


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| over equal-width probability bins, weighted by bin size."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).mean()
                     for b in np.unique(which)))  # fmt: skip


def test_calibrated_probabilities_track_observed_rates(model, churn_run, tiny_data: Path, holdout):
    # on the fold Platt scaling was fitted on, the mean matches and the bins are close
    (valid_date,) = churn_run.as_of_dates["validation"]
    valid = churn_training_set(open_validated(tiny_data), [valid_date], label=churn_run.label)
    p, y = model.probability(valid), valid["churned"].to_numpy()
    assert abs(p.mean() - y.mean()) < 0.01
    assert expected_calibration_error(p, y) < 0.05
    # 90 days later the base rate has moved (seasons), but the bins still track what happened
    p, y = model.probability(holdout), holdout["churned"].to_numpy()
    assert expected_calibration_error(p, y) < 0.1


def test_reasons_are_sentences_from_the_declarations(model, holdout: pd.DataFrame):
    scored = model.score(holdout.head(50))
    assert set(scored.columns) >= {
        "customer_id", "churn_probability", "risk_band", "value_at_risk", "top_reasons", "suggested_action"
    }  # fmt: skip
    assert scored["top_reasons"].map(len).between(0, 3).all()
    assert scored["top_reasons"].map(len).gt(0).mean() > 0.5  # most customers have a reason shown
    assert all(isinstance(t, str) and "=" not in t for reasons in scored["top_reasons"] for t in reasons)
    assert set(scored["suggested_action"]) <= set(ACTION_NAMES)


def test_shown_reasons_read_as_risks_and_the_action_fits_them(model, holdout: pd.DataFrame):
    frame = holdout.head(200)
    for reasons in model.reasons(frame):
        assert all(reason_is_shown(r["feature"], r["value"], r["contribution"]) for r in reasons)
        action = suggest_action([(r["feature"], r["value"]) for r in reasons])
        fitting = [a for a in ACTIONS if a.name == action and any(
            r["feature"] in a.answers and a.when.holds(r["value"]) for r in reasons
        )]  # fmt: skip
        assert action == DEFAULT_ACTION or fitting, reasons
        young_phone = [r for r in reasons if r["feature"] == "phone_age_days" and r["value"] < 365]
        assert not young_phone  # a phone younger than a year is no reason to leave


def test_metrics_json_has_the_design_schema(churn_run):
    doc = json.loads(Path(churn_run.extra["metrics_json"]).read_text())
    assert doc["model"] == "churn" and doc["label"] == "activity"
    for key in ("roc_auc", "pr_auc", "log_loss", "brier", "lift_top_decile", "capture_top_decile"):
        assert isinstance(doc["metrics"][key], float)


def test_the_logged_model_loads_without_training_code(churn_run, holdout: pd.DataFrame, tmp_path: Path):
    frame = tmp_path / "rows.parquet"
    holdout.head(20).to_parquet(frame)
    code = (
        "import sys, mlflow.pyfunc, pandas as pd;"
        f"m = mlflow.pyfunc.load_model({churn_run.model_uri!r});"
        f"p = m.predict(pd.read_parquet({str(frame)!r})[m.metadata.get_input_schema().input_names()]);"
        "assert not [k for k in sys.modules if k.split('.')[0] == 'training'], 'imported training';"
        "print(len(p))"
    )
    import os

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "20"
