"""The simulator: deterministic per seed, contract-valid, calibrated, and its truth is coherent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import EVENT_TYPES, open_validated, validate
from features.errors import UserError
from features.synth import CATEGORIES, SynthConfig, job, oracle_churn_scores, oracle_recommendations, run
from features.synth.config import CATEGORY_SPEC, PRESET_SIZES
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


def test_purchase_category_and_buyer_age_shares_are_calibrated(tiny_data: Path):
    # the brand's figures; the tolerance suits the tiny preset's sample of purchases and buyers
    con = open_validated(tiny_data)
    shares = dict(
        con.execute(
            """SELECT CASE WHEN category IN ('phone', 'smart_home', 'wearable') THEN category
                           ELSE 'other' END, count(*) / sum(count(*)) OVER ()
               FROM events JOIN items USING (item_id) WHERE event_type = 'purchase' GROUP BY 1"""
        ).fetchall()
    )
    for category, target in {"phone": 0.40, "smart_home": 0.25, "wearable": 0.15, "other": 0.20}.items():
        assert shares[category] == pytest.approx(target, abs=0.03), category
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
