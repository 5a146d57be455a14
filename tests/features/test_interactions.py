"""Interaction sets and the two splits of the recommender's evaluation protocol."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.contract import open_validated
from features.errors import UserError
from features.interactions import EVENT_WEIGHTS, build_interactions, random_per_user_split, time_split


@pytest.fixture(scope="module")
def interactions(tiny_data: Path) -> pd.DataFrame:
    return build_interactions(open_validated(tiny_data))


def test_interactions_are_weighted_item_events(interactions: pd.DataFrame):
    assert set(interactions["event_type"]) == set(EVENT_WEIGHTS)
    assert interactions["item_id"].notna().all()
    expected = interactions["event_type"].map(EVENT_WEIGHTS)
    assert (interactions["weight"] == expected).all()


def test_time_split_keeps_time_order_and_excludes_owned_items(interactions: pd.DataFrame):
    split = time_split(interactions, "2025-10-01")
    assert split.train["ts"].max() < pd.Timestamp("2025-10-01")
    owned = set(map(tuple, split.owned.to_numpy()))
    tested = set(map(tuple, split.test.to_numpy()))
    assert tested and not owned & tested
    later = interactions[(interactions["ts"] >= "2025-10-01") & (interactions["event_type"] == "purchase")]
    assert tested <= set(zip(later["customer_id"], later["item_id"], strict=True))


def test_time_split_outside_the_data_is_a_clear_error(interactions: pd.DataFrame):
    with pytest.raises(UserError, match="leaves no training or no test"):
        time_split(interactions, "2030-01-01")


def test_random_per_user_split_holds_out_a_fraction_per_customer(interactions: pd.DataFrame):
    split = random_per_user_split(interactions, test_fraction=0.25, seed=3)
    per_user = (
        split.test.groupby("customer_id").size()
        / (split.test.groupby("customer_id").size() + split.owned.groupby("customer_id").size()).dropna()
    )
    many = per_user[split.owned.groupby("customer_id").size().reindex(per_user.index).fillna(0) >= 7]
    assert many.between(0.1, 0.4).all()
    assert not set(map(tuple, split.test.to_numpy())) & set(map(tuple, split.owned.to_numpy()))
    # held-out pairs leave train entirely (views and carts of them too)
    held = split.test.assign(h=1)
    assert split.train.merge(held, on=["customer_id", "item_id"]).empty


def test_random_split_is_deterministic_per_seed(interactions: pd.DataFrame):
    a = random_per_user_split(interactions, 0.25, seed=1).test
    b = random_per_user_split(interactions, 0.25, seed=1).test
    c = random_per_user_split(interactions, 0.25, seed=2).test
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
