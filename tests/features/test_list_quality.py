"""The lists' figures against the truth: a ranking by the truth itself scores as the best possible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.synth.list_quality import measure, measure_winback, truth_at


def _truth(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hazard = rng.gamma(1.0, 0.01, n)
    gone = rng.random(n) < 0.2
    stage = np.where(gone & (rng.random(n) < 0.8), "lapsed", "active")
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "lifecycle_stage": stage,
            "gone": gone,
            "leaver": ~gone & (rng.random(n) < hazard * 13),
            "weekly_hazard": np.where(gone, 0.0, hazard),
            "revenue": rng.gamma(2.0, 100.0, n),
        }
    )


def test_a_ranking_by_the_true_hazard_matches_the_truths_best():
    truth = _truth()
    p = truth["weekly_hazard"].to_numpy()
    scored = truth[["customer_id"]].assign(churn_probability=p, value_at_risk=p * truth["revenue"])
    doc = measure(truth, scored)
    assert doc["top_1000_probability_vs_hazard"] == 1.0  # every alive customer is in the retention list
    assert doc["revenue_caught_ratio"] >= 0.99
    assert doc["roc_auc_true_leaving_model"] == doc["roc_auc_true_leaving_hazard"]
    assert doc["retention_by_expected_loss"]["stage_lapsed_share_top_1000"] == 0.0


def test_a_random_ranking_finds_the_base_rate_not_more():
    truth = _truth(seed=1)
    noise = np.random.default_rng(2).random(len(truth))
    scored = truth[["customer_id"]].assign(churn_probability=noise, value_at_risk=noise)
    doc = measure(truth, scored)
    assert abs(doc["retention_by_probability"]["true_leavers_top_1000"] - doc["base_rate_alive"]) < 0.05
    assert doc["top_1000_probability_vs_hazard"] < 0.75
    assert abs(doc["roc_auc_true_leaving_model"] - 0.5) < 0.05


def test_the_winback_measure_counts_lapsed_customers_still_there():
    truth = _truth(seed=3)
    lapsed = truth[truth["lifecycle_stage"] == "lapsed"]
    still_there_first = lapsed.sort_values("gone")[["customer_id"]]
    doc = measure_winback(truth, still_there_first)
    base = float((~lapsed["gone"]).mean())
    assert doc["winnable_base_rate_lapsed"] == round(base, 4)
    assert doc["winnable_top_100"] >= base and doc["lapsed_customers"] == len(lapsed)


def test_the_truth_at_a_date_agrees_with_the_simulated_churn_times(tiny_data: Path):
    as_of = pd.Timestamp("2025-06-01")
    truth = truth_at(tiny_data, as_of, 90)
    churn_ts = pd.read_parquet(tiny_data / "truth" / "customers.parquet").set_index("customer_id")["churn_ts"]
    when = churn_ts.reindex(truth["customer_id"]).to_numpy()
    assert (truth["gone"].to_numpy() == (when < as_of)).all()
    assert not (truth["leaver"] & truth["gone"]).any()
    assert truth["leaver"].any() and truth["gone"].any()
    assert (truth.loc[truth["gone"], "weekly_hazard"] == 0).mean() > 0.9  # no hazard once gone
