"""Churn labels and stacked churn training sets.

For an as-of date ``t``: the population is the customers active in ``[t - lookback, t)``
(``population="active"``) or every customer known before ``t`` (``"all"``); a customer is
churned when they make no purchase in ``[t, t + horizon)``. Features use only ``ts < t``, so the
label window starts exactly where the features stop.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from features.errors import UserError
from features.families import DUCKDB
from features.query import as_datetime
from features.snapshot import build_snapshot, data_end
from features.vocab import POPULATIONS, Population


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


def churn_labels(
    con: duckdb.DuckDBPyConnection,
    as_of: date | datetime | str,
    horizon_days: int = 90,
    lookback_days: int = 365,
    population: Population = "active",
) -> pd.DataFrame:
    """``customer_id, churned`` (0/1) for the population at ``as_of``."""
    if population not in POPULATIONS:
        raise UserError(f"Unknown population {population!r}: expected {' or '.join(POPULATIONS)}.")
    if horizon_days <= 0 or lookback_days <= 0:
        raise UserError("horizon_days and lookback_days must be positive numbers of days.")
    t = as_datetime(as_of)
    check_label_window(con, t, horizon_days)
    start, end = DUCKDB.ts(t - timedelta(days=lookback_days)), DUCKDB.ts(label_window_end(t, horizon_days))
    now = DUCKDB.ts(t)
    if population == "active":
        members = f"SELECT DISTINCT customer_id FROM events WHERE ts >= {start} AND ts < {now}"
    else:
        members = (
            f"SELECT customer_id FROM events WHERE ts < {now} UNION "
            f"SELECT customer_id FROM customers WHERE customer_id IS NOT NULL"
            f" AND (signup_ts IS NULL OR signup_ts < {now})"
        )
    return con.execute(
        f"""
        WITH population AS ({members}),
        buyers AS (SELECT DISTINCT customer_id FROM events
                   WHERE event_type = 'purchase' AND ts >= {now} AND ts < {end})
        SELECT p.customer_id, CASE WHEN b.customer_id IS NULL THEN 1 ELSE 0 END AS churned
        FROM population p LEFT JOIN buyers b ON b.customer_id = p.customer_id
        ORDER BY p.customer_id
        """
    ).df()


def churn_training_set(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: list[date | datetime | str],
    horizon_days: int = 90,
    lookback_days: int = 365,
    population: Population = "active",
) -> pd.DataFrame:
    """Snapshot plus label for each as-of date, stacked (columns: snapshot, ``as_of``, ``churned``)."""
    parts = []
    for as_of in sorted(as_datetime(d) for d in as_of_dates):
        labels = churn_labels(con, as_of, horizon_days, lookback_days, population)
        snapshot = build_snapshot(con, as_of)
        frame = labels.merge(snapshot, on="customer_id", how="left")
        frame.insert(1, "as_of", pd.Timestamp(as_of))
        parts.append(frame)
    if not parts:
        raise UserError("No as-of dates given: a training set needs at least one.")
    stacked = pd.concat(parts, ignore_index=True)
    label = stacked.pop("churned")
    stacked["churned"] = label.astype("int64")
    return stacked
