"""Snapshots: every family against its formula, point-in-time correctness, determinism."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import open_validated
from features.errors import UserError
from features.families import all_features
from features.snapshot import FeatureBuildConfig, build_snapshot, run, snapshot_sql
from tests.features.handlog import AS_OF, HAND_EVENTS, write_log


@pytest.fixture()
def hand_snapshot(hand_log: Path) -> pd.DataFrame:
    return build_snapshot(open_validated(hand_log), AS_OF).set_index("customer_id")


def days(a: str, b=AS_OF) -> float:
    return (pd.Timestamp(b) - pd.Timestamp(a)) / pd.Timedelta(days=1)


def test_population_is_customers_known_before_as_of(hand_snapshot: pd.DataFrame):
    # D signs up and acts only after the as-of date
    assert list(hand_snapshot.index) == ["A", "B", "C"]


def test_snapshot_has_every_declared_feature(hand_snapshot: pd.DataFrame):
    assert set(hand_snapshot.columns) == set(all_features())


def test_rfm_formulas(hand_snapshot: pd.DataFrame):
    a = hand_snapshot.loc["A"]
    assert a["purchases_7d"] == 1  # the accessory on 06-24
    assert a["purchases_30d"] == 2  # wearable + accessory
    assert a["purchases_365d"] == 3  # + the phone in January
    assert a["purchases_total"] == 4
    assert a["net_revenue_30d"] == pytest.approx(150 + 40 - 150)  # the wearable was returned
    assert a["net_revenue_365d"] == pytest.approx(800 + 150 + 40 - 150)
    assert a["customer_value"] == pytest.approx(a["net_revenue_365d"])
    assert a["days_since_last_purchase"] == pytest.approx(days("2025-06-24 08:00"))
    b = hand_snapshot.loc["B"]
    assert b["purchases_365d"] == 0 and b["customer_value"] == 0
    assert b["days_since_last_purchase"] == pytest.approx(days("2024-03-01 10:00"))
    assert np.isnan(hand_snapshot.loc["C", "days_since_last_purchase"])
    # buy-till-you-die inputs: age T, span t_x, recency over the mean gap between purchases
    assert a["days_since_first_purchase"] == pytest.approx(days("2023-07-01 10:00"))
    span = days("2023-07-01 10:00", "2025-06-24 08:00")
    assert a["purchase_span_days"] == pytest.approx(span)
    assert a["recency_over_purchase_gap"] == pytest.approx(a["days_since_last_purchase"] / (span / 3 + 1))
    assert np.isnan(b["recency_over_purchase_gap"])  # one purchase: no gap yet


def test_engagement_formulas(hand_snapshot: pd.DataFrame):
    a = hand_snapshot.loc["A"]
    assert a["app_opens_30d"] == 1 and a["app_opens_90d"] == 2
    assert a["views_30d"] == 1 and a["carts_90d"] == 1 and a["community_posts_90d"] == 1
    # engaged events (app opens, views, posts, push opens, carts): 5 in the last 30 days, 1 before
    assert a["engagement_trend"] == pytest.approx((5 + 1) / (1 / 2 + 1))
    assert a["days_since_last_event"] == pytest.approx(1 / 86_400)
    c = hand_snapshot.loc["C"]
    assert c["engagement_trend"] == pytest.approx((2 + 1) / 1)


def test_weighted_engagement_formulas(hand_snapshot: pd.DataFrame):
    a = hand_snapshot.loc["A"]
    engaged = ["2025-06-05 12:00", "2025-06-05 12:05", "2025-06-28 20:00", "2025-06-29 20:00",
               "2025-04-15 20:00", "2025-06-30 23:59:59"]  # fmt: skip
    for tau in (30, 60, 120):
        expected = sum(np.exp(-days(ts) / tau) for ts in engaged)
        assert a[f"engaged_weighted_{tau}d"] == pytest.approx(expected, rel=1e-9)
    # B's one view is 486 days old: a trace; C's two app opens three weeks ago
    b_level = hand_snapshot.loc["B", "engaged_weighted_30d"]
    assert b_level == pytest.approx(np.exp(-days("2024-03-02 10:00") / 30))
    c = hand_snapshot.loc["C"]
    assert c["engaged_weighted_60d"] == pytest.approx(
        np.exp(-days("2025-06-10 10:00") / 60) + np.exp(-days("2025-06-11 10:00") / 60)
    )


def test_ecosystem_phone_age_service_formulas(hand_snapshot: pd.DataFrame):
    a = hand_snapshot.loc["A"]
    assert a["ecosystem_depth"] == 3  # phone, wearable, accessory
    assert (a["owns_phone"], a["owns_wearable"], a["owns_accessory"], a["owns_smart_home"]) == (1, 1, 1, 0)
    assert a["phone_share"] == pytest.approx(2 / 4)
    assert a["phone_age_days"] == pytest.approx(days("2025-01-10 09:00"))
    assert a["service_tickets_90d"] == 2 and a["service_tickets_365d"] == 3
    assert a["returns_365d"] == 1 and a["return_rate_365d"] == pytest.approx(1 / 3)
    assert hand_snapshot.loc["B", "owns_smart_home"] == 1
    assert np.isnan(hand_snapshot.loc["B", "phone_age_days"])


def test_loyalty_channel_campaign_profile_formulas(hand_snapshot: pd.DataFrame):
    a = hand_snapshot.loc["A"]
    assert (a["member_tier"], a["tier_rank"], a["points_balance"]) == ("gold", 2, 1200.0)
    assert a["coupons_365d"] == 1
    a_365 = [e for e in HAND_EVENTS if e[0] == "A" and days(e[1]) <= 365 and days(e[1]) > 0 and e[6]]
    assert a["channel_share_app"] == pytest.approx(sum(e[6] == "app" for e in a_365) / len(a_365))
    assert a["push_opens_90d"] == 1 and a["push_open_rate_90d"] == pytest.approx(1 / (90 / 7))
    assert (a["age"], a["age_band"], a["gender"], a["region"]) == (35.0, "26-35", "f", "east")
    assert a["tenure_days"] == pytest.approx(days("2022-07-01"))
    c = hand_snapshot.loc["C"]
    assert (c["member_tier"], c["age_band"], c["region"]) == ("unknown", "unknown", "unknown")


def test_pushes_and_ads_the_brand_sent_leave_the_channel_mix_as_it_was(tmp_path: Path, hand_snapshot):
    from tests.features.handlog import HAND_CUSTOMERS, HAND_ITEMS

    exposures = [
        ("A", f"2025-06-2{day} 09:00", kind, None, None, None, "social")
        for day in range(1, 8)
        for kind in ("push_sent", "ad_impression", "ad_click")
    ]
    other = write_log(tmp_path / "other", [*HAND_EVENTS, *exposures], HAND_CUSTOMERS, HAND_ITEMS)
    snapshot = build_snapshot(open_validated(other), AS_OF).set_index("customer_id")
    shares = [c for c in snapshot.columns if c.startswith("channel_share_")]
    pd.testing.assert_frame_equal(snapshot[shares], hand_snapshot[shares])


def test_events_at_or_after_as_of_change_nothing_on_a_hand_built_log(tmp_path: Path, hand_snapshot):
    before = [e for e in HAND_EVENTS if pd.Timestamp(e[1]) < AS_OF]
    noise = [
        ("A", "2025-07-01 00:00", "service_ticket", None, None, None, None),  # exactly at as-of
        ("B", "2025-07-02 00:00", "purchase", "P1", 1, 9999.0, "mall"),
        ("E", "2025-07-01 00:00", "app_open", None, None, None, "app"),  # a new customer
    ]
    from tests.features.handlog import HAND_CUSTOMERS, HAND_ITEMS

    other = write_log(tmp_path / "other", before + noise, HAND_CUSTOMERS, HAND_ITEMS)
    pd.testing.assert_frame_equal(
        build_snapshot(open_validated(other), AS_OF).set_index("customer_id"), hand_snapshot
    )


def test_events_at_or_after_as_of_change_nothing_on_the_tiny_preset(tiny_data: Path, tmp_path: Path):
    as_of = "2025-06-01"
    reference = build_snapshot(open_validated(tiny_data), as_of)

    changed = tmp_path / "changed"
    shutil.copytree(tiny_data, changed, ignore=shutil.ignore_patterns("validated", "rejects"))
    events = pd.read_parquet(changed / "events")
    late = events["ts"] >= pd.Timestamp(as_of)
    rng = np.random.default_rng(0)
    # change every later event (amounts, types, items) and add more at exactly as-of
    events.loc[late, "amount"] = rng.uniform(1, 5000, late.sum())
    events.loc[late, "event_type"] = rng.choice(["purchase", "service_ticket", "return"], late.sum())
    extra = events[~late].sample(500, random_state=1).assign(ts=pd.Timestamp(as_of))
    shutil.rmtree(changed / "events")
    (changed / "events").mkdir()
    pd.concat([events, extra]).to_parquet(changed / "events" / "part-0.parquet", index=False)

    pd.testing.assert_frame_equal(build_snapshot(open_validated(changed), as_of), reference)


def test_build_is_deterministic_and_writes_a_manifest(tiny_data: Path, tmp_path: Path):
    cfg = dict(data=tiny_data, as_of=["2025-03-01", "2025-06-01"])
    first = run(FeatureBuildConfig(out=tmp_path / "a", **cfg))
    second = run(FeatureBuildConfig(out=tmp_path / "b", **cfg))
    for day in ("2025-03-01", "2025-06-01"):
        a = pd.read_parquet(first.snapshots[day][1])
        b = pd.read_parquet(second.snapshots[day][1])
        pd.testing.assert_frame_equal(a, b)
        assert a["customer_id"].is_unique
    import json

    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["as_of"] == ["2025-03-01", "2025-06-01"]
    assert manifest["rows"]["2025-06-01"] == first.snapshots["2025-06-01"][0]
    assert manifest["feature_set"] == "customer_snapshot" and manifest["input_fingerprint"]


def test_build_config_takes_dates_datetimes_and_strings(tmp_path: Path):
    cfg = FeatureBuildConfig(
        data=tmp_path, out=tmp_path, as_of=["2025-06-01", date(2025, 6, 1), datetime(2025, 6, 1)]
    )
    assert cfg.as_of == [datetime(2025, 6, 1)] * 3


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"as_of": ["July 1st"]}, "is not a date: expected YYYY-MM-DD"),
        ({"engine": "pandas"}, "Unknown engine 'pandas'"),
    ],
)
def test_build_config_bad_input_is_one_sentence(tmp_path: Path, field: dict, message: str):
    with pytest.raises(UserError, match=message):
        FeatureBuildConfig(**({"data": tmp_path, "out": tmp_path, "as_of": ["2025-06-01"]} | field))


def test_sql_uses_only_functions_spark_also_has():
    from features.families import SPARK

    spark_sql = snapshot_sql("2025-07-01", SPARK)
    assert "epoch_us(" not in spark_sql and "unix_micros(" in spark_sql
    for duckdb_only in ("date_diff(", "epoch_ms(", "list_", "::"):
        assert duckdb_only not in spark_sql
