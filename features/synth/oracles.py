"""Oracle predictions from the simulator's ground truth (``DIR/truth/``)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import UserError
from features.synth.config import CHOICE_TEMPERATURE, PURCHASE_CATEGORY_P, TASTE_DIM
from features.vocab import CATEGORIES


def _read_truth(data_dir: str | Path, name: str) -> pd.DataFrame:
    path = Path(data_dir) / "truth" / name
    if not path.exists():
        raise UserError(f"No ground truth at {path}: only data from `crm data synth` has an oracle.")
    return pd.read_parquet(path)


def true_customers(data_dir: str | Path) -> pd.DataFrame:
    """The simulator's customers: ``customer_id``, ``churn_ts``, latents and ``taste_*``."""
    return _read_truth(data_dir, "customers.parquet")


def true_campaign_effects(data_dir: str | Path) -> pd.DataFrame:
    """The true effects of the simulated campaigns: one row per campaign, audience customer and
    offer (every offer, not only the campaign's own), with ``treated`` (the customer's arm),
    ``alive`` at the start, the hazard and purchase multipliers, ``p_retained_control``,
    ``p_retained_treated`` and their difference ``uplift``."""
    return _read_truth(data_dir, "campaigns")


def true_items(data_dir: str | Path) -> pd.DataFrame:
    """The simulator's items: ``item_id``, ``category``, ``popularity``, ``vec_*`` and ``bias``.

    ``bias`` is the popularity plus the log of the item's category's share of the purchases: with
    ``taste . vec / CHOICE_TEMPERATURE`` it is the oracle's score of an item for a customer.
    """
    items = _read_truth(data_dir, "items.parquet")
    catalogue = pd.read_parquet(Path(data_dir) / "items.parquet")[["item_id", "category"]]
    items = items.merge(catalogue, on="item_id")
    base = dict(zip(CATEGORIES, np.log(PURCHASE_CATEGORY_P), strict=True))
    items["bias"] = items["popularity"].to_numpy() + items["category"].map(base).fillna(-5).to_numpy()
    return items


def oracle_churn_scores(
    data_dir: str | Path, as_of: date | datetime | str, horizon_days: int
) -> pd.DataFrame:
    """The simulator's probability that a customer makes no purchase in ``[as_of, as_of + horizon)``.

    Uses the hidden state at ``as_of``: a customer who has already churned scores 1; otherwise the
    weekly hazard ``h`` and weekly purchase rate ``lam`` of the month of ``as_of`` are held
    constant over the horizon of ``W`` weeks, and ``P_W = q (h + (1 - h) P_{W-1})`` with
    ``q = exp(-lam)`` and ``P_0 = 1`` (no purchase this week, then churn or carry on). This ignores
    seasonality inside the horizon, so it is a close approximation, not the exact optimum.
    """
    as_of = pd.Timestamp(as_of)
    customers = true_customers(data_dir)[["customer_id", "churn_ts"]]
    monthly = _read_truth(data_dir, "monthly")
    month = as_of.to_period("M").to_timestamp()
    state = monthly.loc[monthly["month"] == month, ["customer_id", "weekly_hazard", "weekly_purchase_rate"]]
    frame = customers.merge(state, on="customer_id", how="left")
    h = frame["weekly_hazard"].fillna(0).to_numpy(float)
    q = np.exp(-frame["weekly_purchase_rate"].fillna(0).to_numpy(float))
    p = np.ones(len(frame))
    for _ in range(max(1, round(horizon_days / 7))):
        p = q * (h + (1 - h) * p)
    churned = frame["churn_ts"].notna() & (frame["churn_ts"] < as_of)
    score = np.where(churned, 1.0, p)
    return pd.DataFrame({"customer_id": frame["customer_id"], "oracle_score": score})


def oracle_recommendations(
    data_dir: str | Path,
    customer_ids: list[str],
    k: int,
    exclude: dict[str, set[str]] | None = None,
) -> dict[str, list[str]]:
    """Top-``k`` items per customer by true propensity: taste . item vector / T + popularity,
    plus the log of the category's share of the purchases; items in ``exclude`` are skipped."""
    customers = true_customers(data_dir).set_index("customer_id")
    items = true_items(data_dir)
    bias = items["bias"].to_numpy()
    vec = items[[f"vec_{d}" for d in range(TASTE_DIM)]].to_numpy()
    known = [c for c in customer_ids if c in customers.index]
    taste = customers.loc[known, [f"taste_{d}" for d in range(TASTE_DIM)]].to_numpy(float)
    scores = taste @ vec.T / CHOICE_TEMPERATURE + bias  # (customers, items)
    item_ids = items["item_id"].to_numpy()
    exclude = exclude or {}
    result = {}
    for row, cid in enumerate(known):
        order = np.argsort(-scores[row])
        banned = exclude.get(cid, set())
        result[cid] = [item_ids[j] for j in order[: k + len(banned)] if item_ids[j] not in banned][:k]
    return result
