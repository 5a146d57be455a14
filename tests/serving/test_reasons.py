"""Recommendations a marketer reads: catalogue fields, one comparable score, a reason that is true.

Every reason the tiny service shows is parsed back into its code and words (the templates of
:data:`serving.reasons.REASONS`) and checked against facts recomputed here from the online
snapshot's files, independently of :class:`serving.reasons.Presenter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from serving.reasons import (
    DEVICE_NOUN,
    GOES_WITH,
    MIN_BUYERS,
    MONTH_DAYS,
    REASONS,
    TOP_N,
    ago,
    parse,
    plural,
)
from tests.server import env_scope
from tests.serving.conftest import ServingEnv

DEVICE_OF_NOUN = {noun: category for category, noun in DEVICE_NOUN.items()}


@dataclass
class Facts:
    """What the snapshot's files say, computed here without the presenter."""

    items: pd.DataFrame  # by item_id: category, subcategory, price
    owned: pd.DataFrame  # customer_id, item_id, last_ts, category
    as_of: pd.Timestamp
    recommendable: pd.Index  # the bundle's items: what a popularity rank compares

    def newest(self, customer: str, category: str) -> pd.Timestamp | None:
        rows = self.owned[(self.owned["customer_id"] == customer) & (self.owned["category"] == category)]
        return rows["last_ts"].max() if len(rows) else None

    def owns_anything(self, customer: str) -> bool:
        return bool((self.owned["customer_id"] == customer).any())

    def month_buyers(self) -> pd.Series:
        recent = self.owned[self.owned["last_ts"] >= self.as_of - pd.Timedelta(days=MONTH_DAYS)]
        return recent.groupby("item_id")["customer_id"].nunique().reindex(self.recommendable, fill_value=0)


def _popular(counts: pd.Series, item: str) -> bool:
    """Fewer than TOP_N items have more, and at least MIN_BUYERS."""
    return int((counts > counts[item]).sum()) < TOP_N and counts[item] >= MIN_BUYERS


@pytest.fixture(scope="module")
def state(serving_env: ServingEnv):
    from serving.config import ServiceSettings
    from serving.state import load_state

    with env_scope(serving_env.env):
        return load_state(ServiceSettings.from_env())


@pytest.fixture(scope="module")
def facts(serving_env: ServingEnv, state) -> Facts:
    items = pd.read_parquet(serving_env.snapshot / "items.parquet").set_index("item_id")
    owned = pd.read_parquet(serving_env.snapshot / "owned.parquet")
    owned["category"] = owned["item_id"].map(items["category"])
    recommendable = pd.Index([str(i) for i in state.retrieval.bundle.item_ids])
    return Facts(items, owned, pd.Timestamp(state.snapshot.as_of), recommendable)


def check_reason(facts: Facts, customer: str, item: dict, fallback: bool, now: pd.Timestamp, live=()) -> str:
    """Assert that ``item["reason"]`` is true for ``customer``; returns its code. ``live``: (ts,
    item_id) purchases since the snapshot."""
    parsed = parse(item["reason"])
    assert parsed is not None, f"{item['reason']!r} is no reason of the table"
    code, words = parsed
    item_id, category, subcategory = item["item_id"], item["category"], item["subcategory"]
    bought = [(ts, facts.items.at[i, "category"]) for ts, i in live]

    def newest(device: str) -> pd.Timestamp | None:
        dates = [ts for ts, c in bought if c == device]
        snapshot = facts.newest(customer, device)
        dates += [snapshot] if snapshot is not None else []
        return max(dates) if dates else None

    if code in ("goes_with", "goes_with_yours", "device_owners"):
        device = DEVICE_OF_NOUN[words["device"]]
        when = newest(device)
        assert when is not None, f"{customer} owns no {device}, yet: {item['reason']}"
    if code in ("goes_with", "goes_with_yours"):
        related = GOES_WITH.get((category, subcategory), GOES_WITH.get((category, None), ()))
        assert device in related, (item, related)
        if code == "goes_with":
            assert words["when"] == ago((now - when) / pd.Timedelta(days=1)), (item, when, now)
    elif code == "device_owners":
        assert category != device
        owners = set(facts.owned.loc[facts.owned["category"] == device, "customer_id"])
        buyers = (
            facts.owned[facts.owned["customer_id"].isin(owners)].groupby("item_id")["customer_id"].nunique()
        )
        outside = facts.recommendable[facts.items.loc[facts.recommendable, "category"] != device]
        assert _popular(buyers.reindex(outside, fill_value=0), item_id), item
        everyone = facts.owned["customer_id"].nunique()
        all_buyers = facts.owned.loc[facts.owned["item_id"] == item_id, "customer_id"].nunique()
        assert buyers[item_id] / len(owners) > (all_buyers - buyers[item_id]) / (everyone - len(owners))
    elif code == "popular_month":
        assert _popular(facts.month_buyers(), item_id), item
    elif code == "popular_in_category_month":
        assert words["plural"] == plural(category)
        month = facts.month_buyers()
        assert _popular(month[facts.items.loc[month.index, "category"] == category], item_id), item
    elif code == "history":
        assert not fallback and (facts.owns_anything(customer) or live)
    elif code == "profile":
        assert not fallback and not facts.owns_anything(customer) and not live
    elif code == "bought_before":
        assert fallback and (facts.owned["item_id"] == item_id).any()
    elif code == "range":
        assert fallback and not (facts.owned["item_id"] == item_id).any()
    else:  # most_bought, popular_in_category: only without a snapshot
        pytest.fail(f"{code} is shown by a service that has a snapshot: {item}")
    return code


def test_every_reason_shown_is_true_for_its_customer(state, facts: Facts, serving_env: ServingEnv) -> None:
    customers = serving_env.known_customers[::10][:150] + ["never-seen-7"]
    seen = set()
    now = facts.as_of
    for customer in customers:
        for categories in (None, ["accessory", "wearable"]):
            answer = state.recommend_one(customer, 20, True, categories)
            for item in answer["items"]:
                seen.add(check_reason(facts, customer, item, answer["fallback"], now))
    # the tiny data shows most of the vocabulary (the rest has its own tests)
    assert {"goes_with", "device_owners", "popular_month", "history"} <= seen, seen


def test_a_reason_never_names_a_device_the_customer_does_not_own(state, facts: Facts, serving_env) -> None:
    owners = set(facts.owned.loc[facts.owned["category"].isin(list(DEVICE_NOUN)), "customer_id"])
    without = [c for c in serving_env.known_customers if c not in owners][:20] + ["never-seen-8"]
    assert len(without) > 1
    nouns = tuple(DEVICE_NOUN.values())
    for customer in without:
        for categories in (None, ["accessory"], ["wearable"]):
            for item in state.recommend_one(customer, 30, True, categories)["items"]:
                code, words = parse(item["reason"])
                assert code not in ("goes_with", "goes_with_yours", "device_owners"), (customer, item)
                assert not any(f"the {n} " in item["reason"] or f"your {n}" in item["reason"] for n in nouns)


def test_a_phone_bought_just_now_makes_its_accessories_go_with_it(state, facts: Facts, serving_env) -> None:
    from serving.live import LiveOverlay

    phone_owners = set(facts.owned.loc[facts.owned["category"] == "phone", "customer_id"])
    customer = next(
        c for c in serving_env.known_customers if c not in phone_owners and c in state.retrieval.customer_row
    )
    phone = facts.items.index[(facts.items["category"] == "phone") & facts.items["active"]][0]
    before = state.recommend_one(customer, 20, True, ["accessory"])
    assert not any("phone" in i["reason"] for i in before["items"])

    as_of = datetime.fromisoformat(state.snapshot.as_of)
    bought_at = as_of + timedelta(hours=3)
    live = LiveOverlay(as_of, timedelta(days=7))
    live.apply(
        pd.DataFrame(
            {"customer_id": [customer], "ts": [bought_at], "event_type": ["purchase"], "item_id": [phone]}
        )
    )
    after = state.recommend_one(customer, 20, True, ["accessory"], live)
    assert after["items"] and not after["fallback"]
    for item in after["items"]:
        assert item["reason"] == "goes with the phone bought today", item
        check_reason(
            facts, customer, item, False, pd.Timestamp(bought_at), live=[(pd.Timestamp(bought_at), phone)]
        )
    wearables = state.recommend_one(customer, 5, True, ["wearable"], live)["items"]
    assert {i["reason"] for i in wearables} == {"goes with the phone bought today"}


def test_scores_are_one_scale_in_0_1_for_the_model_and_the_fallback(state, serving_env) -> None:
    """Every list is non-increasing in [0, 1]; over all the candidates of a request (here every
    TV: fewer than 100) a list sums to 1, whether the model or popularity answered."""
    bundle = state.retrieval.bundle
    tvs = int(((bundle.item_category == "tv") & bundle.item_active).sum())
    assert 0 < tvs <= 100
    for customer in [*serving_env.known_customers[:30], "never-seen-9"]:
        answer = state.recommend_one(customer, 100, True, None)
        scores = [i["score"] for i in answer["items"]]
        assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
        assert sum(scores) <= 1.0 + 1e-4
        every_tv = state.recommend_one(customer, 100, True, ["tv"])
        owned_tvs = tvs - len(every_tv["items"])
        assert owned_tvs >= 0
        assert sum(i["score"] for i in every_tv["items"]) == pytest.approx(1.0, abs=1e-4)
    # the fallback's score is the item's share of purchases among the candidates
    unknown = state.recommend_one("never-seen-9", 5, True, None)
    assert unknown["fallback"]
    share = bundle.popularity / bundle.popularity[bundle.item_active].sum()
    position = state.retrieval.item_position
    assert [i["score"] for i in unknown["items"]] == pytest.approx(
        [share[position[i["item_id"]]] for i in unknown["items"]], abs=1e-6
    )


def test_price_and_subcategory_are_the_catalogues(state, facts: Facts, serving_env) -> None:
    for customer in [*serving_env.known_customers[:20], "never-seen-10"]:
        for item in state.recommend_one(customer, 10, True, None)["items"]:
            row = facts.items.loc[item["item_id"]]
            assert item["price"] == round(float(row["price"]), 2)  # to the cent
            assert (item["category"], item["subcategory"]) == (row["category"], row["subcategory"])


def test_the_reason_table_is_data_that_fills_and_parses_back() -> None:
    words = {"device": "phone", "when": "2 months ago", "plural": "wearables"}
    for code, reason in REASONS.items():
        text = reason.template.format(**words)
        assert parse(text) == (code, {k: v for k, v in words.items() if "{" + k + "}" in reason.template})
        assert reason.true_when
    assert [ago(d) for d in (0.2, 1.5, 5, 20, 59, 61, 400, 800)] == [
        "today", "yesterday", "5 days ago", "2 weeks ago", "8 weeks ago", "2 months ago",
        "13 months ago", "2 years ago",
    ]  # fmt: skip
    for (category, _), devices in GOES_WITH.items():
        assert category not in devices and set(devices) <= set(DEVICE_NOUN)


def test_the_batch_job_writes_what_the_service_answers(state, serving_env: ServingEnv, tmp_path) -> None:
    from typer.testing import CliRunner

    from crm.cli import app
    from serving.batch import BatchRecommendConfig, batch_recommend

    audience = tmp_path / "audience.csv"
    ids = [*serving_env.known_customers[:8], "never-seen-11"]
    pd.DataFrame({"customer_id": ids}).to_csv(audience, index=False)
    with env_scope(serving_env.env):
        cfg = BatchRecommendConfig(
            customers=audience, out=tmp_path / "recs.csv", k=5, online_snapshot=serving_env.snapshot,
            store=serving_env.store,
        )  # fmt: skip
        result = batch_recommend(cfg)
        shown = CliRunner().invoke(
            app,
            ["recommend", "--customers", str(audience), "--out", str(tmp_path / "cli.parquet"), "--k", "3"],
        )
    frame = pd.read_csv(result.out)
    assert list(frame.columns) == [
        "customer_id", "rank", "item_id", "category", "subcategory", "price", "score", "reason", "fallback"
    ]  # fmt: skip
    for customer, rows in frame.groupby("customer_id", sort=False):
        answer = state.recommend([customer], 5, True, None)[0]
        assert rows["item_id"].tolist() == [i["item_id"] for i in answer["items"]]
        assert rows["reason"].tolist() == [i["reason"] for i in answer["items"]]
        assert rows["price"].tolist() == [i["price"] for i in answer["items"]]
        assert np.allclose(rows["score"], [i["score"] for i in answer["items"]], atol=2e-6)
    assert shown.exit_code == 0, shown.output
    assert f"first customer: {ids[0]}" in shown.output and "reason" in shown.output
    written = pd.read_parquet(tmp_path / "cli.parquet")
    assert written["reason"].str.len().gt(0).all() and written["score"].between(0, 1).all()
