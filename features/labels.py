"""Churn labels and stacked churn training sets.

Two labels, both for an as-of date ``t`` and a horizon ``h`` (the label window ``[t, t + h)``
starts exactly where the features stop, since they use only ``ts < t``):

- ``activity`` (the default where the events carry engagement): churned when the customer has no
  activity event (``vocab.ACTIVITY_EVENT_TYPES``: a view, cart, purchase, post, push open, coupon
  or service ticket) in the window; the population is the customers with an activity event in
  ``[t - engaged_days, t)``. For a device brand a gap between purchases is ordinary, so "no
  purchase" mostly labels customers who are still there; "no activity" labels those who left.
- ``purchase`` (purchase-only logs such as CDNOW): churned when the customer makes no purchase in
  the window; the population is the customers with any event in ``[t - lookback_days, t)``.

``population="all"`` takes every customer known before ``t`` for either label.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from features.errors import UserError
from features.families import DUCKDB
from features.query import as_datetime
from features.snapshot import build_snapshot, data_end
from features.vocab import (
    ACTIVITY_EVENT_TYPES,
    CHURN_LABELS,
    POPULATIONS,
    PURCHASE_EVENT_TYPES,
    ChurnLabel,
    Population,
)

ENGAGED_DAYS = 30  # the activity label's population: an activity event in the last 30 days


def label_window_end(as_of: date | datetime | str, horizon_days: int) -> datetime:
    """The end of the label window: ``horizon_days`` after the as-of date."""
    return as_datetime(as_of) + timedelta(days=horizon_days)


def check_label_window(con: duckdb.DuckDBPyConnection, as_of: datetime, horizon_days: int) -> None:
    """The label window must lie inside the data, or the label would call buyers churned."""
    end = label_window_end(as_of, horizon_days)
    last = data_end(con)
    last_day_end = datetime(last.year, last.month, last.day) + timedelta(days=1)
    if end > last_day_end:
        raise UserError(
            f"The label window of as-of {as_of:%Y-%m-%d} with a horizon of {horizon_days} days ends on"
            f" {end:%Y-%m-%d}, after the last event ({last:%Y-%m-%d}): choose an earlier as-of date"
            " or a shorter horizon."
        )


def has_engagement_events(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the events carry engagement: any event type besides purchases and returns."""
    others = ", ".join(f"'{t}'" for t in PURCHASE_EVENT_TYPES)
    found = con.execute(f"SELECT 1 FROM events WHERE event_type NOT IN ({others}) LIMIT 1").fetchall()
    return bool(found)


def default_label(con: duckdb.DuckDBPyConnection) -> ChurnLabel:
    """``activity`` where the events carry engagement, ``purchase`` for purchase-only logs."""
    return "activity" if has_engagement_events(con) else "purchase"


def _event_types(label: ChurnLabel) -> str:
    """The SQL list of the event types that keep a customer from being churned under ``label``."""
    kinds = ACTIVITY_EVENT_TYPES if label == "activity" else ("purchase",)
    return "(" + ", ".join(f"'{t}'" for t in kinds) + ")"


def _population_sql(
    label: ChurnLabel, population: Population, t: datetime, lookback_days: int, engaged_days: int
) -> str:
    """The customer ids of the population at ``t``."""
    now = DUCKDB.ts(t)
    if population == "all":
        return (
            f"SELECT customer_id FROM events WHERE ts < {now} UNION "
            f"SELECT customer_id FROM customers WHERE customer_id IS NOT NULL"
            f" AND (signup_ts IS NULL OR signup_ts < {now})"
        )
    if label == "activity":
        start = DUCKDB.ts(t - timedelta(days=engaged_days))
        return (
            f"SELECT DISTINCT customer_id FROM events"
            f" WHERE event_type IN {_event_types(label)} AND ts >= {start} AND ts < {now}"
        )
    start = DUCKDB.ts(t - timedelta(days=lookback_days))
    return f"SELECT DISTINCT customer_id FROM events WHERE ts >= {start} AND ts < {now}"


def _check(label: str, population: str, *days: int) -> None:
    if label not in CHURN_LABELS:
        raise UserError(f"Unknown churn label {label!r}: expected {' or '.join(CHURN_LABELS)}.")
    if population not in POPULATIONS:
        raise UserError(f"Unknown population {population!r}: expected {' or '.join(POPULATIONS)}.")
    if any(d <= 0 for d in days):
        raise UserError("horizon_days, lookback_days and engaged_days must be positive numbers of days.")


def churn_labels(
    con: duckdb.DuckDBPyConnection,
    as_of: date | datetime | str,
    horizon_days: int = 90,
    lookback_days: int = 365,
    population: Population = "active",
    label: ChurnLabel = "purchase",
    engaged_days: int = ENGAGED_DAYS,
) -> pd.DataFrame:
    """``customer_id, churned`` (0/1) for the population at ``as_of`` (see the module docstring)."""
    _check(label, population, horizon_days, lookback_days, engaged_days)
    t = as_datetime(as_of)
    check_label_window(con, t, horizon_days)
    now, end = DUCKDB.ts(t), DUCKDB.ts(label_window_end(t, horizon_days))
    members = _population_sql(label, population, t, lookback_days, engaged_days)
    return con.execute(
        f"""
        WITH population AS ({members}),
        stayed AS (SELECT DISTINCT customer_id FROM events
                   WHERE event_type IN {_event_types(label)} AND ts >= {now} AND ts < {end})
        SELECT p.customer_id, CASE WHEN s.customer_id IS NULL THEN 1 ELSE 0 END AS churned
        FROM population p LEFT JOIN stayed s ON s.customer_id = p.customer_id
        ORDER BY p.customer_id
        """
    ).df()


def churn_training_set(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: list[date | datetime | str],
    horizon_days: int = 90,
    lookback_days: int = 365,
    population: Population = "active",
    label: ChurnLabel = "purchase",
    engaged_days: int = ENGAGED_DAYS,
) -> pd.DataFrame:
    """Snapshot plus label for each as-of date, stacked (columns: snapshot, ``as_of``, ``churned``)."""
    parts = []
    for as_of in sorted(as_datetime(d) for d in as_of_dates):
        labels = churn_labels(con, as_of, horizon_days, lookback_days, population, label, engaged_days)
        snapshot = build_snapshot(con, as_of)
        frame = labels.merge(snapshot, on="customer_id", how="left")
        frame.insert(1, "as_of", pd.Timestamp(as_of))
        parts.append(frame)
    if not parts:
        raise UserError("No as-of dates given: a training set needs at least one.")
    stacked = pd.concat(parts, ignore_index=True)
    churned = stacked.pop("churned")
    stacked["churned"] = churned.astype("int64")
    return stacked
