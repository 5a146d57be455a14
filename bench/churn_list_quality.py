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
Revenue is the past year's net revenue from the events, whatever ``customer_value`` a list shows
(the value model's forecast by default, ``--value-model-uri``). With a value model, the win-back
list is measured too: the share of its top customers still there to win back.

The measures live in :mod:`features.synth.list_quality`, for the demo's summary to call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench import emit
from features.contract import open_validated
from features.query import as_datetime
from features.snapshot import build_snapshot
from features.synth.list_quality import measure, measure_winback, truth_at
from serving.batch import ScoredLists, score_lists


def score_with_model(snapshot: pd.DataFrame, args: argparse.Namespace) -> ScoredLists:
    """Every snapshot row scored as the lists score them, from the churn and value models."""
    from features.store import Store

    store = Store.at(args.store) if args.store else Store.from_env()
    return score_lists(snapshot, store, args.model_uri, args.value_model_uri or None)


def read_list(path: Path) -> pd.DataFrame:
    """A churn list file as ``crm churn-list`` writes it."""
    return (
        pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"customer_id": str})
    )


def scored_customers(args: argparse.Namespace, as_of: pd.Timestamp) -> ScoredLists:
    """The ranked customers from the list, the online snapshot or the snapshot at ``as_of``."""
    if args.list:
        return ScoredLists(read_list(args.list), None, None)
    if args.snapshot:
        from features.online import load_online_snapshot

        online = load_online_snapshot(args.snapshot)
        if pd.Timestamp(online.as_of) != as_of:
            print(f"warning: the online snapshot is as of {online.as_of}, not {as_of}", file=sys.stderr)
        return score_with_model(online.snapshot, args)
    return score_with_model(build_snapshot(open_validated(args.data), as_of), args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a simulated data folder (with truth/)")
    parser.add_argument("--as-of", required=True, help="the date the list is made for (YYYY-MM-DD)")
    parser.add_argument("--snapshot", type=Path, help="an online snapshot folder to score")
    parser.add_argument("--list", type=Path, help="a churn list file (crm churn-list --top 50000)")
    parser.add_argument("--model-uri", default="models:/churn@champion")
    parser.add_argument(
        "--value-model-uri", default="models:/value@champion",
        help="the value model of customer_value ('' or none registered: past-year revenue)",
    )  # fmt: skip
    parser.add_argument("--store", type=Path, help="the store folder (default: CRM_STORE_DIR)")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    as_of = pd.Timestamp(as_datetime(args.as_of))
    truth = truth_at(args.data, as_of, args.horizon_days)
    doc = {"benchmark": "churn_list_quality", "as_of": f"{as_of:%Y-%m-%d}", "horizon_days": args.horizon_days}
    doc |= {"source": "list" if args.list else "snapshot" if args.snapshot else "model"}
    lists = scored_customers(args, as_of)
    doc["valued_by"] = lists.value_model or "past-year revenue"
    doc |= measure(truth, lists.scored)
    if lists.winback is not None:
        doc["winback"] = measure_winback(truth, lists.winback)
    emit(doc, args.out, default=_plain)


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else str(value)


if __name__ == "__main__":
    main()
