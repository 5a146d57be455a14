"""The simulator's calibration read back from a data folder it wrote: what a CRM analyst would check.

- revenue shares of the brand's category groups, net of returns (and gross), beside the targets;
- the phone lifecycle: the gap between one customer's consecutive phone purchases, and, since a
  two-year window only shows the gaps shorter than two years, the share of the phone owners at the
  start who replace their phone within the window, the replacement rate per owner-year it implies
  and the phone lifetime estimated by Kaplan-Meier over every phone (those bought before the data
  come from ``truth/customers.parquet:prior_phone_ts``; churn and the end of the data censor);
- the cart-to-purchase conversion (add-to-carts are abandoned too) and the purchases' category mix.

Raw Parquet files are read (not ``validated/``), so a folder straight from :func:`run` will do.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.contract import sql_string
from features.synth.config import END, REVENUE_SHARE_TARGETS, START, revenue_group
from features.vocab import CATEGORIES

DAYS_PER_YEAR = 365.25


def read_calibration(data_dir: str | Path) -> dict:
    """The calibration figures of a simulated data folder (see the module's docstring)."""
    con = _connect(Path(data_dir))
    return {
        "revenue_shares_net": revenue_shares(con, net=True),
        "revenue_shares_gross": revenue_shares(con, net=False),
        "revenue_share_targets": dict(REVENUE_SHARE_TARGETS),
        "purchase_count_shares": purchase_count_shares(con),
        "cart_conversion": cart_conversion(con),
        "phone": phone_lifecycle(con, Path(data_dir)),
    }


def _connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, path in (("events", data_dir / "events" / "*.parquet"), ("items", data_dir / "items.parquet")):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql_string(path)})")
    con.execute(
        """CREATE VIEW sales AS SELECT e.customer_id, e.ts, e.event_type, e.amount, i.category
           FROM events e JOIN items i USING (item_id) WHERE e.event_type IN ('purchase', 'return')"""
    )
    return con


def revenue_shares(con: duckdb.DuckDBPyConnection, net: bool = True) -> dict[str, float]:
    """Each group's share of the revenue, net of returns or gross (purchases only)."""
    sign = "CASE WHEN event_type = 'return' THEN -amount ELSE amount END" if net else "amount"
    where = "" if net else "WHERE event_type = 'purchase'"
    per_category = dict(con.execute(f"SELECT category, sum({sign}) FROM sales {where} GROUP BY 1").fetchall())
    groups = dict.fromkeys(REVENUE_SHARE_TARGETS, 0.0)
    for category, revenue in per_category.items():
        groups[revenue_group(category)] += float(revenue)
    total = sum(groups.values())
    return {group: round(revenue / total, 4) for group, revenue in groups.items()}


def purchase_count_shares(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Each category's share of the purchases (by count)."""
    counts = dict(
        con.execute(
            "SELECT category, count(*) FROM sales WHERE event_type = 'purchase' GROUP BY 1"
        ).fetchall()
    )
    total = sum(counts.values())
    return {c: round(counts.get(c, 0) / total, 4) for c in CATEGORIES}


def cart_conversion(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Add-to-carts, purchases and their ratio (each purchase went through the cart)."""
    carts, purchases = con.execute(
        """SELECT count(*) FILTER (WHERE event_type = 'add_to_cart'),
                  count(*) FILTER (WHERE event_type = 'purchase') FROM events"""
    ).fetchone()
    return {"add_to_cart": carts, "purchases": purchases, "conversion": round(purchases / max(carts, 1), 4)}


def phone_purchases(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``customer_id, ts`` of every phone purchase, by customer and time."""
    return con.execute(
        """SELECT customer_id, ts FROM sales WHERE event_type = 'purchase' AND category = 'phone'
           ORDER BY customer_id, ts"""
    ).df()


def phone_lifecycle(con: duckdb.DuckDBPyConnection, data_dir: Path) -> dict:
    """The phone-replacement figures of the module's docstring."""
    phones = phone_purchases(con)
    gaps = phones.groupby("customer_id")["ts"].diff().dt.total_seconds().dropna() / 86_400
    figures = {
        "customers_with_2plus_phones": int(gaps.index.map(phones["customer_id"]).nunique()),
        "gap_days_median": _round(gaps.median()),
        "gap_days_quartiles": [_round(gaps.quantile(0.25)), _round(gaps.quantile(0.75))],
    }
    truth_path = data_dir / "truth" / "customers.parquet"
    if truth_path.exists():
        truth = pd.read_parquet(truth_path, columns=["customer_id", "churn_ts", "prior_phone_ts"])
        figures |= owner_replacement(phones, truth) | {"lifetime_years": phone_lifetime(phones, truth)}
    return figures


def owner_replacement(phones: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Of the customers with a phone at the start: the share who buy a new one within the window,
    and the replacements per owner-year until the first replacement, churn or the end (a constant
    hazard, so ``1 / rate`` is the lifetime it implies)."""
    owners = truth.dropna(subset=["prior_phone_ts"]).set_index("customer_id")
    first_new = phones.groupby("customer_id")["ts"].min().reindex(owners.index)
    end = owners["churn_ts"].fillna(pd.Timestamp(END)).clip(upper=pd.Timestamp(END))
    until = first_new.where(first_new.notna() & (first_new < end), end)
    years = ((until - pd.Timestamp(START)).dt.total_seconds() / 86_400 / DAYS_PER_YEAR).clip(lower=0).sum()
    replaced = int((first_new.notna() & (first_new < end)).sum())
    rate = replaced / years if years > 0 else float("nan")
    return {
        "owners_at_start": len(owners),
        "owners_replacing_in_window_share": round(replaced / max(len(owners), 1), 4),
        "replacement_rate_per_owner_year": round(rate, 4),
        "implied_lifetime_years": round(1 / rate, 2) if rate > 0 else None,
    }


def phone_lifetime(phones: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float | None]:
    """Kaplan-Meier quartiles of a phone's lifetime (until the owner's next phone), in years, over
    the phones owned at the start (entering at their age then) and those bought in the window."""
    prior = truth.dropna(subset=["prior_phone_ts"])[["customer_id", "prior_phone_ts"]]
    bought = pd.concat(
        [prior.rename(columns={"prior_phone_ts": "ts"}).assign(prior=True), phones.assign(prior=False)]
    ).sort_values(["customer_id", "ts"], kind="stable")
    bought["next_ts"] = bought.groupby("customer_id")["ts"].shift(-1)
    stop = bought["customer_id"].map(truth.set_index("customer_id")["churn_ts"]).fillna(pd.Timestamp(END))
    stop = stop.clip(upper=pd.Timestamp(END))
    replaced = bought["next_ts"].notna() & (bought["next_ts"] <= stop)
    exit_ts = bought["next_ts"].where(replaced, stop)
    start = pd.Timestamp(START)
    entry_ts = bought["ts"].where(~bought["prior"], start)
    years = lambda ts: (ts - bought["ts"]).dt.total_seconds().to_numpy() / 86_400 / DAYS_PER_YEAR  # noqa: E731
    survival_at = kaplan_meier(years(entry_ts), years(exit_ts), replaced.to_numpy())
    return {f"p{q}": survival_at(1 - q / 100) for q in (25, 50, 75)}


def kaplan_meier(entry: np.ndarray, exit: np.ndarray, event: np.ndarray):
    """The Kaplan-Meier estimate with delayed entry (left truncation): each subject is at risk from
    ``entry`` to ``exit``; ``event`` marks an exit by the event rather than by censoring. Returns a
    function of a survival level that gives the first time the survival falls to it (None if never)."""
    keep = exit > entry
    entry, exit, event = entry[keep], exit[keep], event[keep]
    times = np.unique(exit[event])
    entered = np.searchsorted(np.sort(entry), times, side="left")  # entry < t
    left = np.searchsorted(np.sort(exit), times, side="left")  # exit < t
    at_risk = entered - left
    deaths = np.searchsorted(np.sort(exit[event]), times, side="right") - np.searchsorted(
        np.sort(exit[event]), times, side="left"
    )
    survival = np.cumprod(1 - deaths / np.maximum(at_risk, 1))

    def time_at(level: float) -> float | None:
        below = np.flatnonzero(survival <= level)
        return round(float(times[below[0]]), 2) if len(below) else None

    return time_at


def _round(x: float) -> float | None:
    return None if pd.isna(x) else round(float(x), 1)
