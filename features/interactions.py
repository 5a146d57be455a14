"""Interaction sets for the recommender: weighted (customer, item, ts) rows and their splits.

Evaluation protocol: the test set holds the purchases a model must predict;
each customer's already-owned items (bought before the split, or in the training part of a random
split) are excluded from ranking, since a cross-sell push never offers what the customer owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from features.errors import UserError
from features.query import as_datetime
from features.vocab import SPLITS as SPLITS  # re-exported: training reads the splits here

# How much an event says about interest in an item; returns and events without items carry none.
EVENT_WEIGHTS = {"purchase": 1.0, "add_to_cart": 0.4, "view": 0.1}


@dataclass
class InteractionSplit:
    """Train interactions, test purchases and each customer's owned items, with the split's facts."""

    train: pd.DataFrame  # customer_id, item_id, ts, weight, event_type
    test: pd.DataFrame  # customer_id, item_id (distinct purchases to predict)
    owned: pd.DataFrame  # customer_id, item_id (excluded from ranking)
    info: dict = field(default_factory=dict)

    def owned_sets(self) -> dict[str, set[str]]:
        return self.owned.groupby("customer_id")["item_id"].agg(set).to_dict()

    def test_sets(self) -> dict[str, set[str]]:
        return self.test.groupby("customer_id")["item_id"].agg(set).to_dict()


def build_interactions(
    con: duckdb.DuckDBPyConnection, weights: dict[str, float] | None = None
) -> pd.DataFrame:
    """``customer_id, item_id, ts, event_type, weight`` for every event with an item and a weight."""
    weights = weights or EVENT_WEIGHTS
    cases = " ".join(f"WHEN '{k}' THEN {float(v)}" for k, v in weights.items())
    types = ", ".join(f"'{k}'" for k in weights)
    frame = con.execute(
        f"""SELECT customer_id, item_id, ts, event_type, CASE event_type {cases} END AS weight
            FROM events WHERE item_id IS NOT NULL AND event_type IN ({types})
            ORDER BY ts, customer_id, item_id"""
    ).df()
    return frame


def time_split(interactions: pd.DataFrame, split_date: date | datetime | str) -> InteractionSplit:
    """Train on everything before ``split_date``; test on purchases from it on, of items not owned."""
    t = pd.Timestamp(as_datetime(split_date))
    train = interactions[interactions["ts"] < t].reset_index(drop=True)
    if train.empty or (interactions["ts"] >= t).sum() == 0:
        raise UserError(
            f"Split date {t:%Y-%m-%d} leaves no training or no test interactions: the data runs from"
            f" {interactions['ts'].min():%Y-%m-%d} to {interactions['ts'].max():%Y-%m-%d}."
        )
    owned = _distinct_purchases(train)
    later = _distinct_purchases(interactions[interactions["ts"] >= t])
    test = later.merge(owned, how="left", indicator=True)
    test = test[test["_merge"] == "left_only"].drop(columns="_merge").reset_index(drop=True)
    info = {"split": "time", "split_date": f"{t:%Y-%m-%d}"}
    return InteractionSplit(train, test, owned, info)


def random_per_user_split(
    interactions: pd.DataFrame, test_fraction: float = 0.25, seed: int = 42
) -> InteractionSplit:
    """Per customer, a seeded random ``test_fraction`` of their distinct purchased items is held out.

    The protocol of the published MovieLens tables (a stratified random split per user): every
    customer keeps ``round((1 - f) * n)`` items in train; the rest are test purchases.
    """
    if not 0 < test_fraction < 1:
        raise UserError(f"test_fraction must lie between 0 and 1, got {test_fraction}.")
    purchases = _distinct_purchases(interactions)
    rng = np.random.default_rng(seed)
    purchases = purchases.sort_values(["customer_id", "item_id"]).reset_index(drop=True)
    purchases["_r"] = rng.random(len(purchases))
    purchases["_rank"] = purchases.groupby("customer_id")["_r"].rank(method="first")
    n = purchases.groupby("customer_id")["item_id"].transform("size")
    in_train = purchases["_rank"] <= np.round((1 - test_fraction) * n)
    test = purchases.loc[~in_train, ["customer_id", "item_id"]].reset_index(drop=True)
    held = test.assign(_held=True)
    train = interactions.merge(held, on=["customer_id", "item_id"], how="left")
    train = train[train["_held"].isna()].drop(columns="_held").reset_index(drop=True)
    owned = purchases.loc[in_train, ["customer_id", "item_id"]].reset_index(drop=True)
    info = {"split": "random-per-user", "test_fraction": test_fraction, "seed": seed}
    return InteractionSplit(train, test, owned, info)


def _distinct_purchases(interactions: pd.DataFrame) -> pd.DataFrame:
    buys = interactions[interactions["event_type"] == "purchase"]
    return buys[["customer_id", "item_id"]].drop_duplicates().reset_index(drop=True)


def default_split_date(con: duckdb.DuckDBPyConnection, test_days: int = 90) -> datetime:
    """The default time split: ``test_days`` before the end of the data."""
    last = con.execute("SELECT max(ts) FROM events").fetchone()[0]
    day = datetime(last.year, last.month, last.day)
    return day - pd.Timedelta(days=test_days - 1).to_pytimedelta()
