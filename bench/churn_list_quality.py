"""The churn list measured against the simulator's truth, not only the model. JSON on stdout.

    python -m bench.churn_list_quality --data DIR --as-of DATE [--snapshot DIR] [--list FILE]
        [--model-uri URI] [--horizon-days 90] [--out FILE]

A *true leaver* is a customer alive at the as-of date (``truth/customers.parquet: churn_ts`` null
or later) whose churn time falls within the next ``horizon`` days; a customer *gone* left before
the as-of date. The ranked customers come from one of:

- ``--list FILE``: a churn list as ``crm churn-list --top 50000`` writes it (CSV or Parquet); the
  ROC-AUC is then over the listed customers only;
- ``--snapshot DIR``: an online snapshot, scored with the churn model (``--model-uri``, the store
  from the environment);
- neither: the snapshot at the as-of date built from ``--data``, scored with the model.

The retention list is every customer but the lapsed ones (the lists' default), ranked by
probability and by expected loss (``value_at_risk``) as :func:`serving.churn_scoring.rank` ranks
them. Beside it, in the same run: the ranking of the alive customers by the simulator's true
weekly hazard (the month of the as-of date), and by that hazard times the past year's revenue.
Revenue is the past year's net revenue from the events, whatever ``customer_value`` a list shows.

:func:`measure` is the figure for a scored frame, for other scripts to call.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.contract import open_validated
from features.query import as_datetime
from features.snapshot import build_snapshot
from features.vocab import LAPSED, LIFECYCLE_STAGES

TOPS = (100, 1000)


def truth_at(data: Path, as_of: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """Per customer known before ``as_of``: gone, true leaver, weekly hazard, past-year revenue
    and the lifecycle stage of the snapshot at ``as_of``."""
    snapshot = build_snapshot(open_validated(data), as_of)[
        ["customer_id", "lifecycle_stage", "net_revenue_365d"]
    ]
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


def score_with_model(snapshot: pd.DataFrame, model_uri: str, store_dir: Path | None = None) -> pd.DataFrame:
    """``customer_id, churn_probability, value_at_risk`` of every snapshot row, from the model."""
    import mlflow
    from features.store import Store

    store = Store.at(store_dir) if store_dir else Store.from_env()
    mlflow.set_tracking_uri(store.tracking)
    mlflow.set_registry_uri(store.tracking)
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    return model.score(snapshot.reset_index(drop=True), with_reasons=False)


def read_list(path: Path) -> pd.DataFrame:
    """A churn list file as ``crm churn-list`` writes it."""
    return (
        pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"customer_id": str})
    )


def scored_customers(args: argparse.Namespace, as_of: pd.Timestamp) -> pd.DataFrame:
    """The ranked customers from the list, the online snapshot or the snapshot at ``as_of``."""
    if args.list:
        return read_list(args.list)
    if args.snapshot:
        from features.online import load_online_snapshot

        online = load_online_snapshot(args.snapshot)
        if pd.Timestamp(online.as_of) != as_of:
            print(f"warning: the online snapshot is as of {online.as_of}, not {as_of}", file=sys.stderr)
        return score_with_model(online.snapshot, args.model_uri, args.store)
    return score_with_model(build_snapshot(open_validated(args.data), as_of), args.model_uri, args.store)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a simulated data folder (with truth/)")
    parser.add_argument("--as-of", required=True, help="the date the list is made for (YYYY-MM-DD)")
    parser.add_argument("--snapshot", type=Path, help="an online snapshot folder to score")
    parser.add_argument("--list", type=Path, help="a churn list file (crm churn-list --top 50000)")
    parser.add_argument("--model-uri", default="models:/churn@champion")
    parser.add_argument("--store", type=Path, help="the store folder (default: CRM_STORE_DIR)")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    as_of = pd.Timestamp(as_datetime(args.as_of))
    truth = truth_at(args.data, as_of, args.horizon_days)
    doc = {"benchmark": "churn_list_quality", "as_of": f"{as_of:%Y-%m-%d}", "horizon_days": args.horizon_days}
    doc |= {"source": "list" if args.list else "snapshot" if args.snapshot else "model"}
    doc |= measure(truth, scored_customers(args, as_of))
    text = json.dumps(doc, indent=2, default=_plain)
    if args.out:
        args.out.write_text(text)
    print(text)


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else str(value)


if __name__ == "__main__":
    main()
