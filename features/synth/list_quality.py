"""The churn and win-back lists measured against the simulator's truth (``DIR/truth/``).

A *true leaver* is a customer alive at the as-of date (``truth/customers.parquet: churn_ts`` null
or later) whose churn time falls within the next ``horizon`` days; a customer *gone* left before
the as-of date. :func:`measure` compares the retention list (every customer but the lapsed ones,
ranked by probability and by expected loss) with the ranking of the alive customers by the
simulator's true weekly hazard, and by that hazard times the past year's revenue, in the same
call; :func:`measure_winback` the win-back list (lapsed customers) with the truth of who is still
there to win back. ``bench/churn_list_quality.py`` and the demo's summary report them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from features.contract import open_validated
from features.snapshot import build_snapshot
from features.vocab import LAPSED, LIFECYCLE_STAGES

TOPS = (100, 1000)


def truth_at(
    data: Path, as_of: pd.Timestamp, horizon_days: int, snapshot: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per customer known before ``as_of``: gone, true leaver, weekly hazard, past-year revenue
    and the lifecycle stage of the snapshot at ``as_of`` (built here unless given)."""
    if snapshot is None:
        snapshot = build_snapshot(open_validated(data), as_of)
    snapshot = snapshot[["customer_id", "lifecycle_stage", "net_revenue_365d"]]
    customers = pd.read_parquet(Path(data) / "truth" / "customers.parquet")[["customer_id", "churn_ts"]]
    monthly = pd.read_parquet(Path(data) / "truth" / "monthly")
    month = monthly.loc[
        monthly["month"] == as_of.to_period("M").to_timestamp(), ["customer_id", "weekly_hazard"]
    ]
    frame = snapshot.merge(customers, on="customer_id", how="left").merge(month, on="customer_id", how="left")
    frame["gone"] = (frame["churn_ts"] < as_of).to_numpy(dtype=bool)
    leaves = frame["churn_ts"] < as_of + timedelta(days=horizon_days)
    frame["leaver"] = (~frame["gone"] & leaves).to_numpy(dtype=bool)
    frame["weekly_hazard"] = frame["weekly_hazard"].fillna(0.0)
    frame["revenue"] = frame["net_revenue_365d"].clip(lower=0.0)
    return frame.drop(columns=["churn_ts", "net_revenue_365d"])


def _top(ranked: pd.DataFrame) -> dict[str, float]:
    """Shares of true leavers in the top 100 and 1,000, and of gone customers in the top 1,000."""
    out = {f"true_leavers_top_{k}": round(float(ranked["leaver"].head(k).mean()), 4) for k in TOPS}
    out["lapsed_share_top_1000"] = round(float(ranked["gone"].head(1000).mean()), 4)
    out["stage_lapsed_share_top_1000"] = round(
        float((ranked["lifecycle_stage"] == LAPSED).head(1000).mean()), 4
    )
    return out


def _ranked(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values([key, "customer_id"], ascending=[False, True], kind="stable")


def _caught(ranked: pd.DataFrame) -> float:
    """The past-year revenue of the true leavers in the top 1,000."""
    top = ranked.head(1000)
    return float((top["leaver"] * top["revenue"]).sum())


def measure(truth: pd.DataFrame, scored: pd.DataFrame) -> dict:
    """The list's figures for ``scored`` (``customer_id, churn_probability, value_at_risk``) against
    ``truth`` (:func:`truth_at`); the stages are those of the snapshot at the as-of date."""
    frame = scored[["customer_id", "churn_probability", "value_at_risk"]].merge(truth, on="customer_id")
    retention = frame[frame["lifecycle_stage"] != LAPSED]
    alive, scored_alive = truth[~truth["gone"]], frame[~frame["gone"]]
    by_probability = _top(_ranked(retention, "churn_probability"))
    by_loss = _ranked(retention, "value_at_risk")
    by_hazard = _top(_ranked(alive, "weekly_hazard"))
    best = _ranked(alive.assign(loss=alive["weekly_hazard"] * alive["revenue"]), "loss")
    caught, caught_best = _caught(by_loss), _caught(best)
    lapsed = truth["lifecycle_stage"] == LAPSED
    model_auc = roc_auc_score(scored_alive["leaver"], scored_alive["churn_probability"])
    return {
        "retention_by_probability": by_probability,
        "retention_by_expected_loss": _top(by_loss),
        "true_hazard": by_hazard,
        "base_rate_alive": round(float(alive["leaver"].mean()), 4),
        "roc_auc_true_leaving_model": round(float(model_auc), 4),
        "roc_auc_true_leaving_hazard": round(
            float(roc_auc_score(alive["leaver"], alive["weekly_hazard"])), 4
        ),
        "revenue_caught_top_1000": round(caught, 2),
        "revenue_caught_best_1000": round(caught_best, 2),
        # the bars: probability top 1,000 against the hazard's, revenue caught against the best
        "top_1000_probability_vs_hazard": round(
            by_probability["true_leavers_top_1000"] / max(by_hazard["true_leavers_top_1000"], 1e-9), 4
        ),
        "revenue_caught_ratio": round(caught / caught_best, 4) if caught_best else None,
        "lapsed_precision": round(float(truth.loc[lapsed, "gone"].mean()), 4),
        "lapsed_recall": round(float(lapsed[truth["gone"]].mean()), 4),
        "stages": stage_table(truth),
        "customers": len(truth),
        "scored": len(frame),
        "alive": len(alive),
        "true_leavers": int(alive["leaver"].sum()),
    }


def stage_table(truth: pd.DataFrame) -> dict[str, dict]:
    """Per lifecycle stage: customers, the share gone, and the true churn rate in the horizon of
    those alive."""
    table = {}
    for stage in LIFECYCLE_STAGES:
        rows = truth[truth["lifecycle_stage"] == stage]
        alive = rows[~rows["gone"]]
        table[stage] = {
            "customers": len(rows),
            "gone_share": round(float(rows["gone"].mean()), 4) if len(rows) else None,
            "true_churn_rate_alive": round(float(alive["leaver"].mean()), 4) if len(alive) else None,
        }
    return table


def measure_winback(truth: pd.DataFrame, ranked: pd.DataFrame) -> dict:
    """The win-back list (``customer_id`` best first) against the truth: the share of its top 100
    and 1,000 still there to win back (not gone), beside that share among all lapsed customers."""
    lapsed = truth[truth["lifecycle_stage"] == LAPSED]
    listed = ranked[["customer_id"]].merge(truth, on="customer_id", how="left")
    out = {f"winnable_top_{k}": round(float((~listed["gone"].head(k).astype(bool)).mean()), 4) for k in TOPS}
    out["winnable_base_rate_lapsed"] = round(float((~lapsed["gone"]).mean()), 4) if len(lapsed) else None
    out["lapsed_customers"] = len(lapsed)
    return out
