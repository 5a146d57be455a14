"""The simulator: deterministic per seed, contract-valid, calibrated, and its truth is coherent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.contract import EVENT_TYPES, open_validated, validate
from features.errors import UserError
from features.synth import (
    CATEGORIES,
    SynthConfig,
    job,
    oracle_churn_scores,
    oracle_recommendations,
    read_calibration,
    run,
)
from features.synth import calibration as calibration_module
from features.synth.config import CATEGORY_SPEC, PRESET_SIZES, PURCHASE_CATEGORY_P, REVENUE_SHARE_TARGETS
from features.vocab import PRESETS


def digest(folder: Path) -> dict[str, str]:
    """Content hash of every data file (Parquet bytes are deterministic for equal tables)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
        if "validated" not in p.parts and "rejects" not in p.parts
    }


def small(out: Path, seed: int) -> Path:
    run(SynthConfig(preset="tiny", seed=seed, out=out, customers=300, items=120))
    return out


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path):
    a = digest(small(tmp_path / "a", seed=1))
    b = digest(small(tmp_path / "b", seed=1))
    c = digest(small(tmp_path / "c", seed=2))
    assert a == b
    assert a["events/part-00000.parquet"] != c["events/part-00000.parquet"]


def test_chunks_write_their_own_parts_and_number_customers_on(tmp_path: Path, monkeypatch):
    # the large preset's path: several chunks, the last one too small for tier quantiles
    monkeypatch.setattr(job, "CHUNK_CUSTOMERS", 140)
    out = tmp_path / "chunked"
    result = run(SynthConfig(preset="tiny", seed=1, out=out, customers=285, items=120))
    assert sorted(p.name for p in (out / "events").iterdir()) == [f"part-0000{k}.parquet" for k in range(3)]
    assert len(list((out / "truth" / "monthly").iterdir())) == 3
    customers = pd.read_parquet(out / "customers.parquet")
    assert customers["customer_id"].tolist() == [f"C{i:07d}" for i in range(1, 286)]
    assert result.events == len(pd.read_parquet(out / "events"))
    report = validate(out, max_reject_share=0.0)
    assert all(r.rows_rejected == 0 for r in report.tables.values())


def test_the_tables_cover_the_vocabularies():
    assert tuple(CATEGORY_SPEC) == CATEGORIES
    assert tuple(PRESET_SIZES) == PRESETS
    with pytest.raises(UserError, match="Unknown preset"):
        SynthConfig(preset="huge").sizes()  # type: ignore[arg-type]


def test_tiny_preset_passes_the_contract_without_rejects(tiny_data: Path):
    report = validate(tiny_data, max_reject_share=0.0)
    assert all(r.rows_rejected == 0 for r in report.tables.values())
    assert report.tables["customers"].rows_clean == 2_000


def test_every_event_type_and_channel_appears(tiny_data: Path):
    con = open_validated(tiny_data)
    types = {r[0] for r in con.execute("SELECT DISTINCT event_type FROM events").fetchall()}
    channels = {r[0] for r in con.execute("SELECT DISTINCT channel FROM events").fetchall()}
    assert types == set(EVENT_TYPES)
    assert {"mall", "app", "offline_store", "social", "partner"} <= channels


def test_revenue_shares_and_buyer_age_shares_are_calibrated(tiny_data: Path):
    # the brand's figures; the tolerance suits the tiny preset's sample of purchases and buyers
    figures = read_calibration(tiny_data)
    for shares in (figures["revenue_shares_net"], figures["revenue_shares_gross"]):
        assert set(shares) == set(REVENUE_SHARE_TARGETS)
        for group, target in REVENUE_SHARE_TARGETS.items():
            assert shares[group] == pytest.approx(target, abs=0.03), group
    # a phone is bought seldom but costs much: far below its share of the revenue in count
    assert figures["purchase_count_shares"]["phone"] < 0.5 * REVENUE_SHARE_TARGETS["phone"]
    con = open_validated(tiny_data)
    ages = dict(
        con.execute(
            """WITH buyers AS (SELECT DISTINCT customer_id FROM events WHERE event_type = 'purchase')
               SELECT CASE WHEN 2025 - birth_year <= 25 THEN '18-25'
                           WHEN 2025 - birth_year <= 35 THEN '26-35' ELSE 'older' END,
                      count(*) / sum(count(*)) OVER ()
               FROM buyers JOIN customers USING (customer_id) GROUP BY 1"""
        ).fetchall()
    )
    assert ages["18-25"] == pytest.approx(0.285, abs=0.035)
    assert ages["26-35"] == pytest.approx(0.393, abs=0.035)


def test_revenue_shares_count_returns_against_their_group():
    con = duckdb.connect()
    con.execute(
        """CREATE VIEW sales AS SELECT * FROM (VALUES ('purchase', 500.0, 'phone'),
           ('return', 100.0, 'phone'), ('purchase', 100.0, 'tv'), ('purchase', 100.0, 'laptop'),
           ('purchase', 200.0, 'wearable'))
           AS t(event_type, amount, category)"""
    )
    assert calibration_module.revenue_shares(con, net=True) == {
        "phone": 0.5, "smart_home": 0.0, "wearable": 0.25, "other": 0.25
    }  # fmt: skip
    assert calibration_module.revenue_shares(con, net=False)["phone"] == pytest.approx(500 / 900, abs=1e-4)


def test_a_phone_lasts_two_to_three_years(tiny_data: Path):
    phone = read_calibration(tiny_data)["phone"]
    # consecutive phone purchases of one customer: only gaps shorter than the two-year window show
    assert phone["customers_with_2plus_phones"] >= 5
    assert phone["gap_days_median"] >= 548
    # so the lifetime is read over every phone, those owned at the start included
    assert 2.0 <= phone["lifetime_years"]["p50"] <= 3.0
    assert 2.0 <= phone["implied_lifetime_years"] <= 3.5
    assert 0.3 < phone["owners_replacing_in_window_share"] < 0.8


def test_kaplan_meier_with_delayed_entry():
    # no censoring, no delayed entry: the empirical survival
    median = calibration_module.kaplan_meier(np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4, bool))
    assert median(0.5) == 2.0 and median(0.25) == 3.0 and median(0.0) == 4.0
    # a subject entering at 2.5 is not at risk at 2; a censored one leaves the risk set
    km = calibration_module.kaplan_meier(
        np.array([0.0, 0.0, 2.5, 0.0]), np.array([2.0, 3.0, 3.5, 2.5]), np.array([True, True, True, False])
    )
    assert km(0.75) == 2.0  # 1 of 3 at risk at 2 -> 2/3
    assert km(0.34) == 3.0  # then 1 of 2 at risk at 3 -> 1/3
    assert km(0.0) == 3.5


def test_some_carts_are_abandoned(tiny_data: Path):
    conversion = read_calibration(tiny_data)["cart_conversion"]
    assert conversion["add_to_cart"] > conversion["purchases"]
    assert 0.3 <= conversion["conversion"] <= 0.6
    con = open_validated(tiny_data)
    # every purchase went through the cart, and an abandoned cart holds an item browsed just before
    unexplained_purchases, unexplained_carts = con.execute(
        """SELECT
             (SELECT count(*) FROM events p WHERE p.event_type = 'purchase' AND NOT EXISTS (
                SELECT 1 FROM events c WHERE c.event_type = 'add_to_cart' AND c.customer_id = p.customer_id
                AND c.item_id = p.item_id AND c.ts BETWEEN p.ts - INTERVAL 1 HOUR AND p.ts)),
             (SELECT count(*) FROM events c WHERE c.event_type = 'add_to_cart' AND NOT EXISTS (
                SELECT 1 FROM events v WHERE v.event_type IN ('view', 'purchase')
                AND v.customer_id = c.customer_id AND v.item_id = c.item_id
                AND v.ts BETWEEN c.ts - INTERVAL 1 HOUR AND c.ts + INTERVAL 1 HOUR))"""
    ).fetchone()
    assert unexplained_purchases == 0 and unexplained_carts == 0


def test_the_truth_keeps_its_columns_and_is_coherent(tiny_data: Path):
    truth = pd.read_parquet(tiny_data / "truth" / "customers.parquet")
    assert {"customer_id", "churn_ts", "prior_phone_ts", "activity", "quality", "engagement_decline"} <= set(
        truth
    )
    assert (truth["prior_phone_ts"].dropna() < pd.Timestamp("2024-01-01")).all()
    monthly = pd.read_parquet(tiny_data / "truth" / "monthly")
    assert {"customer_id", "month", "alive_at_start", "weekly_hazard", "weekly_purchase_rate"} <= set(monthly)
    assert len(monthly) == 24 * len(truth)
    frame = monthly.merge(truth[["customer_id", "churn_ts"]], on="customer_id")
    # alive at a month's start exactly when the churn comes later (or never)
    later = frame["churn_ts"].isna() | (frame["churn_ts"] >= frame["month"])
    assert (frame["alive_at_start"] == later).all()
    gone = ~frame["alive_at_start"]
    assert (frame.loc[gone, "weekly_hazard"] == 0).all() and (
        frame.loc[gone, "weekly_purchase_rate"] == 0
    ).all()
    assert frame.loc[~gone, "weekly_hazard"].between(0, 1).all()


def test_churn_hazard_follows_tickets_engagement_an_ageing_phone_and_few_categories(tiny_data: Path):
    # per customer and month: the true hazard against last month's tickets, the phone's age, the
    # categories bought so far and the hidden engagement decline
    monthly = pd.read_parquet(tiny_data / "truth" / "monthly")
    truth = pd.read_parquet(tiny_data / "truth" / "customers.parquet")
    con = open_validated(tiny_data)
    con.register("monthly", monthly[monthly["weekly_hazard"] > 0])
    con.register("truth", truth[["customer_id", "prior_phone_ts", "engagement_decline"]])
    hazard = con.execute(
        """WITH bought AS (SELECT customer_id, ts, category FROM events JOIN items USING (item_id)
                           WHERE event_type = 'purchase'),
                phones AS (SELECT customer_id, ts FROM bought WHERE category = 'phone'
                           UNION ALL
                           SELECT customer_id, prior_phone_ts FROM truth WHERE prior_phone_ts IS NOT NULL),
                state AS (SELECT m.customer_id, m.month, m.weekly_hazard, t.engagement_decline,
                    (SELECT count(*) FROM events e WHERE e.event_type = 'service_ticket'
                     AND e.customer_id = m.customer_id
                     AND e.ts >= m.month - INTERVAL 1 MONTH AND e.ts < m.month) AS tickets,
                    (SELECT date_diff('day', max(p.ts), m.month) FROM phones p
                     WHERE p.customer_id = m.customer_id AND p.ts < m.month) AS phone_age_days,
                    (SELECT count(DISTINCT b.category) FROM bought b
                     WHERE b.customer_id = m.customer_id AND b.ts < m.month) AS categories
                  FROM monthly m JOIN truth t USING (customer_id) WHERE m.month >= '2025-01-01')
           SELECT avg(weekly_hazard) FILTER (WHERE tickets > 0)
                    / avg(weekly_hazard) FILTER (WHERE tickets = 0),
                  avg(weekly_hazard) FILTER (WHERE phone_age_days > 2 * 365)
                    / avg(weekly_hazard) FILTER (WHERE phone_age_days < 365),
                  avg(weekly_hazard) FILTER (WHERE categories <= 1)
                    / avg(weekly_hazard) FILTER (WHERE categories >= 3),
                  avg(weekly_hazard) FILTER (WHERE engagement_decline > 0)
                    / avg(weekly_hazard) FILTER (WHERE engagement_decline = 0)
           FROM state"""
    ).fetchone()
    tickets, ageing_phone, few_categories, falling_engagement = hazard
    assert tickets > 1.2 and ageing_phone > 1.5 and few_categories > 1.5 and falling_engagement > 1.5


def test_promotions_lift_purchases(tiny_data: Path):
    con = open_validated(tiny_data)
    per_day = dict(
        con.execute(
            """SELECT (month(ts) = 11 AND day(ts) <= 11) OR (month(ts) = 6 AND day(ts) <= 18) AS promo,
                      count(*) / count(DISTINCT CAST(ts AS DATE))
               FROM events WHERE event_type = 'purchase' GROUP BY 1"""
        ).fetchall()
    )
    assert per_day[True] > 1.4 * per_day[False]


def test_churned_customers_stop_buying(tiny_data: Path):
    truth = pd.read_parquet(tiny_data / "truth" / "customers.parquet")
    churned = truth.dropna(subset=["churn_ts"])
    assert 0.05 < len(churned) / len(truth) < 0.6
    events = pd.read_parquet(tiny_data / "events")
    buys = events[events["event_type"].isin(["purchase", "view", "add_to_cart"])]
    late = buys.merge(churned, on="customer_id")
    # a week is the simulation step: nothing is bought more than a week after churning
    assert (late["ts"] <= late["churn_ts"] + pd.Timedelta(days=7)).all()


def test_cross_sell_phone_buyers_buy_accessories_soon_after(tiny_data: Path):
    con = open_validated(tiny_data)
    after_phone, baseline = con.execute(
        """WITH p AS (SELECT e.customer_id, e.ts, i.category FROM events e JOIN items i USING (item_id)
                      WHERE e.event_type = 'purchase'),
                nxt AS (SELECT category, lag(category) OVER (PARTITION BY customer_id ORDER BY ts) AS prev
                        FROM p)
           SELECT avg((category = 'accessory')::INT) FILTER (WHERE prev = 'phone'),
                  avg((category = 'accessory')::INT) FILTER (WHERE prev <> 'phone')
           FROM nxt"""
    ).fetchone()
    assert after_phone > 1.5 * baseline


def test_the_oracles_category_prior_follows_the_purchases(tiny_data: Path):
    shares = read_calibration(tiny_data)["purchase_count_shares"]
    for category, prior in zip(CATEGORIES, PURCHASE_CATEGORY_P, strict=True):
        assert shares[category] == pytest.approx(prior, abs=0.03), category


def test_oracle_churn_scores_predict_the_label(tiny_data: Path):
    from sklearn.metrics import roc_auc_score

    con = open_validated(tiny_data)
    labels = con.execute(
        """WITH active AS (SELECT DISTINCT customer_id FROM events
                           WHERE ts < '2025-07-01' AND ts >= '2024-07-01'),
                buyers AS (SELECT DISTINCT customer_id FROM events WHERE event_type = 'purchase'
                           AND ts >= '2025-07-01' AND ts < '2025-09-29')
           SELECT a.customer_id, (b.customer_id IS NULL)::INT AS churned
           FROM active a LEFT JOIN buyers b USING (customer_id)"""
    ).df()
    scores = oracle_churn_scores(tiny_data, "2025-07-01", 90)
    assert scores["customer_id"].is_unique and len(scores) == 2_000
    assert scores["oracle_score"].between(0, 1).all()
    merged = labels.merge(scores, on="customer_id")
    assert roc_auc_score(merged["churned"], merged["oracle_score"]) > 0.75


def test_oracle_recommendations_skip_excluded_items(tiny_data: Path):
    customers = ["C0000001", "C0000002", "C0000003"]
    first = oracle_recommendations(tiny_data, customers, k=10)
    exclude = {c: set(first[c][:3]) for c in customers}
    recs = oracle_recommendations(tiny_data, customers, k=10, exclude=exclude)
    for c in customers:
        assert len(recs[c]) == 10 and len(set(recs[c])) == 10
        assert not exclude[c] & set(recs[c])
        assert recs[c][:7] == first[c][3:10]


def test_items_cover_every_category(tiny_data: Path):
    items = pd.read_parquet(tiny_data / "items.parquet")
    assert set(items["category"]) == set(CATEGORIES)
    assert items["item_id"].is_unique and (items["price"] > 0).all()
    assert np.isin(items["active"], [True, False]).all()


# -- retention campaigns and marketing exposures ------------------------------------------------


def test_campaigns_are_randomised_with_a_control_share(tiny_data: Path):
    from features.synth.config import CONTROL_SHARE

    campaigns = pd.read_parquet(tiny_data / "campaigns")
    truth = pd.read_parquet(tiny_data / "truth" / "campaigns")
    assert campaigns.groupby("campaign_id")["ts"].nunique().eq(1).all()
    assert not campaigns.duplicated(["campaign_id", "customer_id"]).any()
    assert set(campaigns["arm"]) == {"treatment", "control"}
    assert (campaigns["arm"] == "control").mean() == pytest.approx(CONTROL_SHARE, abs=0.03)
    assert (campaigns.loc[campaigns["arm"] == "control", "cost"] == 0).all()
    assert (campaigns.loc[campaigns["arm"] == "treatment", "cost"] > 0).all()
    # the arms are a random split: the same true chance of staying without the offer
    own = truth.merge(
        campaigns[["campaign_id", "customer_id", "offer"]], on=["campaign_id", "customer_id", "offer"]
    )
    by_arm = own.groupby("treated")["p_retained_control"].mean()
    assert by_arm[True] == pytest.approx(by_arm[False], abs=0.03)
    per_year = campaigns.groupby(campaigns["ts"].dt.year)["campaign_id"].nunique()
    assert (per_year >= 4).all()


def test_no_campaign_reaches_a_customer_while_an_earlier_ones_outcome_is_read(tiny_data: Path):
    from features.campaigns import DEFAULT_WINDOW

    campaigns = pd.read_parquet(tiny_data / "campaigns").sort_values(["customer_id", "ts"])
    gap = campaigns.groupby("customer_id")["ts"].diff().dropna()
    assert (gap >= pd.Timedelta(days=DEFAULT_WINDOW.offset_days + DEFAULT_WINDOW.days)).all()


def test_true_effects_differ_between_customers_as_designed(tiny_data: Path):
    truth = pd.read_parquet(tiny_data / "truth" / "campaigns")
    customers = pd.read_parquet(tiny_data / "truth" / "customers.parquet")
    frame = truth.merge(customers[["customer_id", "price_sensitivity", "offer_response"]], on="customer_id")
    alive = frame[frame["alive"]]
    assert set(truth["offer"]) == {"coupon", "upgrade_offer", "service_call", "bundle", "push"}
    # nobody gone before the campaign is kept by it; the indifferent do not react at all
    assert (frame.loc[~frame["alive"], "uplift"] == 0).all()
    assert (alive.loc[alive["offer_response"] == "indifferent", "uplift"].abs() < 1e-6).all()
    # a few react against a marketing offer, never against a service call
    against = alive[alive["offer_response"] == "against"]
    assert (against.loc[against["offer"] == "coupon", "uplift"] <= 1e-6).all()
    assert (against.loc[against["offer"] == "service_call", "uplift"].abs() < 1e-6).all()
    # price-sensitive customers answer coupons
    coupon = alive[(alive["offer"] == "coupon") & (alive["offer_response"] == "responds")]
    sensitive = coupon["price_sensitivity"] > coupon["price_sensitivity"].median()
    assert coupon.loc[sensitive, "uplift"].mean() > 2 * coupon.loc[~sensitive, "uplift"].mean()
    # and customers with recent service tickets answer a service call
    con = open_validated(tiny_data)
    con.register("calls", alive[alive["offer"] == "service_call"][["campaign_id", "customer_id", "uplift"]])
    with_tickets, without = con.execute(
        """WITH c AS (SELECT calls.*, (SELECT min(ts) FROM campaigns k
                              WHERE k.campaign_id = calls.campaign_id) AS start FROM calls),
                t AS (SELECT c.*, (SELECT count(*) FROM events e WHERE e.customer_id = c.customer_id
                        AND e.event_type = 'service_ticket' AND e.ts >= c.start - INTERVAL 30 DAY
                        AND e.ts < c.start) AS tickets FROM c)
           SELECT avg(uplift) FILTER (WHERE tickets > 0), avg(uplift) FILTER (WHERE tickets = 0) FROM t"""
    ).fetchone()
    assert with_tickets > 3 * without


def test_the_true_retention_matches_the_realised_one(tiny_data: Path):
    # the truth's chance of being retained, per arm, against the share retained in the events
    from features.campaigns import campaign_outcomes, list_campaigns

    con = open_validated(tiny_data)
    truth = pd.read_parquet(tiny_data / "truth" / "campaigns")
    realised, expected = [], []
    for campaign in list_campaigns(con):
        outcomes = campaign_outcomes(con, campaign)
        own = truth[(truth["campaign_id"] == campaign.campaign_id) & (truth["offer"] == campaign.offer)]
        own = own.merge(outcomes, on="customer_id")
        p = np.where(own["treated_x"], own["p_retained_treated"], own["p_retained_control"])
        realised.append(own["retained"].to_numpy())
        expected.append(p)
    realised, expected = np.concatenate(realised), np.concatenate(expected)
    assert realised.mean() == pytest.approx(expected.mean(), abs=0.02)
    # and it ranks: customers the truth gives a low chance are retained far less often
    low = expected < np.quantile(expected, 0.2)
    assert realised[low].mean() < realised[~low].mean() - 0.2


def test_ads_convert_at_the_brands_rates_and_pushes_are_sent_before_opened(tiny_data: Path):
    from features.synth.config import AD_RATES, PUSH_OPEN_SHARE

    con = open_validated(tiny_data)
    funnels = con.execute(
        """WITH clicks AS (SELECT customer_id, item_id, channel, ts FROM events
                           WHERE event_type = 'ad_click'),
                bought AS (SELECT DISTINCT p.customer_id, p.ts, p.channel FROM events p JOIN clicks c
                           ON p.customer_id = c.customer_id AND p.item_id = c.item_id
                           AND p.channel = c.channel AND p.ts > c.ts AND p.ts <= c.ts + INTERVAL 7 DAY
                           WHERE p.event_type = 'purchase')
           SELECT channel, count(*) FILTER (WHERE event_type = 'ad_impression'),
                  count(*) FILTER (WHERE event_type = 'ad_click'),
                  (SELECT count(*) FROM bought b WHERE b.channel = e.channel)
           FROM events e WHERE event_type IN ('ad_impression', 'ad_click') GROUP BY channel"""
    ).fetchall()
    assert {row[0] for row in funnels} == set(AD_RATES)
    for channel, impressions, clicks, purchases in funnels:
        click_rate, purchase_rate = AD_RATES[channel]
        assert clicks / impressions == pytest.approx(click_rate, rel=0.15), channel
        assert purchases / impressions == pytest.approx(purchase_rate, rel=0.15), channel
    opened, sent, unexplained = con.execute(
        """SELECT count(*) FILTER (WHERE event_type = 'push_open'),
                  count(*) FILTER (WHERE event_type = 'push_sent'),
             (SELECT count(*) FROM events o WHERE o.event_type = 'push_open' AND NOT EXISTS (
                SELECT 1 FROM events s WHERE s.event_type = 'push_sent' AND s.customer_id = o.customer_id
                AND s.ts BETWEEN o.ts - INTERVAL 6 HOUR AND o.ts))
           FROM events"""
    ).fetchone()
    assert opened / sent == pytest.approx(PUSH_OPEN_SHARE, abs=0.02) and unexplained == 0


def test_exposures_never_follow_a_customers_last_own_event(tiny_data: Path):
    con = open_validated(tiny_data)
    late = con.execute(
        """WITH own AS (SELECT customer_id, max(ts) AS last_ts FROM events
                        WHERE event_type NOT IN ('push_sent', 'ad_impression', 'ad_click') GROUP BY 1)
           SELECT count(*) FROM events e LEFT JOIN own USING (customer_id)
           WHERE e.event_type IN ('push_sent', 'ad_impression', 'ad_click')
             AND (own.last_ts IS NULL OR e.ts > own.last_ts)"""
    ).fetchone()[0]
    assert late == 0
