"""A seeded simulator of the brand's customers, written in the input contract, with ground truth.

The generative model (weekly steps over two years, 2024-01-01 .. 2025-12-31):

- customers: age band, gender, region, signup date, member tier and points; a latent taste vector
  (``TASTE_DIM``), an activity level, a service-quality latent and an engagement level that drifts
  (for some customers downwards);
- items: categories and subcategories of the brand, prices, launch dates, latent vectors; an item
  is chosen inside its category by ``softmax(taste . item_vector / T + popularity)``, so purchases
  are predictable from history;
- category of a purchase: base shares (calibrated so purchases split phones 40%, smart home 25%,
  wearables 15%, other 20%) times cross-sell state: no phone -> phone first; a fresh phone ->
  accessories and wearables in the following weeks; owning several categories -> smart home; a
  phone 2-3 years old -> replacement;
- events: views and add-to-carts before each purchase (funnel), browsing views, app opens, push
  opens (one push a week, opened ~4-5%), community posts, service tickets, coupon redemptions,
  returns (~4% of purchases, within 30 days), with channels and seasonal promotions (Spring
  Festival, mid-June, early November);
- churn: a weekly hazard that rises with recent service tickets, falling engagement, an ageing
  phone and few ecosystem categories and falls with tier and ecosystem depth; a churned customer
  stops buying and browsing (a third keep a trickle of app opens).

Ground truth in ``DIR/truth/``: ``customers.parquet`` (churn time, taste vector, latents),
``monthly.parquet`` (per customer and month: weekly churn hazard, weekly purchase rate, alive at
the month start) and ``items.parquet`` (latent vectors, popularity). :func:`oracle_churn_scores`
and :func:`oracle_recommendations` turn it into oracle predictions.

Customers are simulated in independent chunks (each with its own child seed), so memory is
bounded by the chunk size and the output does not depend on how many chunks run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import UserError

START = datetime(2024, 1, 1)
WEEKS = 104  # 2024-01-01 .. 2025-12-28, the data ends 2025-12-31
END = datetime(2025, 12, 31, 23, 59, 59)
TASTE_DIM = 8
TASTE_SCALE = 2.2  # tastes are N(0, 1) / sqrt(TASTE_DIM) * TASTE_SCALE
CHOICE_TEMPERATURE = 0.35  # of the softmax that picks an item inside its category
CHUNK_CUSTOMERS = 50_000

AGE_BANDS = (("18-25", 18, 25, 0.285), ("26-35", 26, 35, 0.393), ("36-45", 36, 45, 0.180),
             ("46-55", 46, 55, 0.097), ("56-70", 56, 70, 0.045))  # fmt: skip
REGIONS = ("east", "south", "north", "central", "southwest", "northeast", "northwest")
REGION_WEIGHTS = (0.28, 0.22, 0.16, 0.12, 0.10, 0.07, 0.05)
TIERS = ("standard", "silver", "gold", "platinum")

# category -> (share of the catalogue, subcategories, median price)
CATEGORY_SPEC = {
    "phone": (0.22, ("flagship", "midrange", "budget", "foldable"), 520.0),
    "smart_home": (0.22, ("speaker", "camera", "lighting", "router", "vacuum", "plug"), 60.0),
    "wearable": (0.16, ("watch", "band", "earbuds"), 110.0),
    "tv": (0.08, ("oled", "led", "projector"), 700.0),
    "laptop": (0.08, ("ultrabook", "gaming", "tablet"), 900.0),
    "accessory": (0.18, ("case", "charger", "screen_protector", "cable", "power_bank"), 25.0),
    "other": (0.06, ("gift_card", "service_plan", "bundle"), 50.0),
}
CATEGORIES = tuple(CATEGORY_SPEC)
C_PHONE, C_SMART, C_WEAR, C_TV, C_LAPTOP, C_ACC, C_OTHER = range(len(CATEGORIES))
# Base weights of the category of a purchase, calibrated (see tests) so that the purchase shares
# come out near phones 40%, smart home 25%, wearables 15%, other (tv, laptop, accessory, other) 20%.
CATEGORY_BASE = np.array([0.7159, 0.0778, 0.1087, 0.023, 0.0276, 0.0261, 0.021])
# Browsing spreads over categories like purchases do on average.
VIEW_CATEGORY_P = np.array([0.40, 0.25, 0.15, 0.03, 0.035, 0.10, 0.035])
CHANNELS = ("mall", "app", "offline_store", "social", "partner")
PURCHASE_CHANNEL_P = (0.34, 0.30, 0.22, 0.10, 0.04)
BROWSE_CHANNEL_P = (0.40, 0.40, 0.02, 0.16, 0.02)
PUSH_OPEN_RATE = 0.045  # one push a week to every customer

PROMOTIONS = (  # (first day, last day, multiplier of shopping activity)
    (date(2024, 2, 3), date(2024, 2, 17), 1.7),  # Spring Festival 2024
    (date(2025, 1, 22), date(2025, 2, 5), 1.7),  # Spring Festival 2025
    (date(2024, 6, 1), date(2024, 6, 18), 2.0),  # mid-June festival
    (date(2025, 6, 1), date(2025, 6, 18), 2.0),
    (date(2024, 11, 1), date(2024, 11, 11), 2.4),  # early-November festival
    (date(2025, 11, 1), date(2025, 11, 11), 2.4),
)

PRESETS = {  # customers, items
    "tiny": (2_000, 300),
    "demo": (50_000, 2_000),
    "large": (1_000_000, 5_000),
}


@dataclass
class SynthConfig:
    """What to simulate. ``customers``/``items`` override the preset's sizes."""

    preset: str = "tiny"
    seed: int = 42
    out: Path = Path("out/data")
    customers: int | None = None
    items: int | None = None

    def sizes(self) -> tuple[int, int]:
        if self.preset not in PRESETS:
            raise UserError(f"Unknown preset {self.preset!r}: expected one of {', '.join(PRESETS)}.")
        n_customers, n_items = PRESETS[self.preset]
        return self.customers or n_customers, self.items or n_items


@dataclass
class SynthResult:
    out: Path
    tables: dict[str, tuple[int, Path]] = field(default_factory=dict)
    events: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# catalogue


@dataclass
class Catalogue:
    item_ids: np.ndarray  # (n_items,) str
    category: np.ndarray  # (n_items,) int
    subcategory: np.ndarray  # (n_items,) str
    price: np.ndarray  # (n_items,)
    launch_week: np.ndarray  # (n_items,) int, may be negative (launched before the start)
    vectors: np.ndarray  # (n_items, TASTE_DIM)
    popularity: np.ndarray  # (n_items,) log-popularity bias
    active: np.ndarray  # (n_items,) bool

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "item_id": self.item_ids,
                "category": np.array(CATEGORIES)[self.category],
                "subcategory": self.subcategory,
                "price": self.price.round(2),
                "launch_date": (pd.Timestamp(START) + pd.to_timedelta(self.launch_week * 7, unit="D")).astype(
                    "datetime64[us]"
                ),
                "active": self.active,
            }
        )


def make_catalogue(n_items: int, rng: np.random.Generator) -> Catalogue:
    shares = np.array([CATEGORY_SPEC[c][0] for c in CATEGORIES])
    counts = np.maximum(3, np.round(shares / shares.sum() * n_items).astype(int))
    category = np.repeat(np.arange(len(CATEGORIES)), counts)[:n_items]
    if len(category) < n_items:
        category = np.concatenate([category, np.full(n_items - len(category), C_ACC)])
    subcategory = np.empty(n_items, dtype=object)
    price = np.empty(n_items)
    for c, name in enumerate(CATEGORIES):
        idx = np.flatnonzero(category == c)
        subs = CATEGORY_SPEC[name][1]
        subcategory[idx] = np.array(subs, dtype=object)[rng.integers(0, len(subs), len(idx))]
        price[idx] = CATEGORY_SPEC[name][2] * rng.lognormal(0.0, 0.45, len(idx))
    # Item vectors: a category direction plus noise, so taste is partly about categories.
    cat_dirs = rng.normal(0, 1, (len(CATEGORIES), TASTE_DIM))
    vectors = 0.6 * cat_dirs[category] + rng.normal(0, 1, (n_items, TASTE_DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    popularity = rng.normal(0, 0.8, n_items)
    launch_week = rng.integers(-120, WEEKS - 8, n_items)
    active = launch_week > -100  # the oldest models are discontinued
    item_ids = np.array([f"I{i:05d}" for i in range(1, n_items + 1)], dtype=object)
    return Catalogue(item_ids, category, subcategory, price, launch_week, vectors, popularity, active)


# ---------------------------------------------------------------------------------------------
# seasonality


def week_multipliers() -> np.ndarray:
    """(WEEKS,) shopping-activity multiplier of each week (promotions, a mild summer dip)."""
    mult = np.ones(WEEKS)
    for w in range(WEEKS):
        start = (START + timedelta(days=7 * w)).date()
        end = start + timedelta(days=6)
        for first, last, m in PROMOTIONS:
            overlap = (min(end, last) - max(start, first)).days + 1
            if overlap > 0:
                mult[w] = max(mult[w], 1 + (m - 1) * overlap / 7)
    return mult


# ---------------------------------------------------------------------------------------------
# one chunk of customers


@dataclass
class ChunkOutput:
    customers: pd.DataFrame
    events: pa.Table
    truth_customers: pd.DataFrame
    truth_monthly: pd.DataFrame


def _draw_customers(n: int, first_index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    band_p = np.array([b[3] for b in AGE_BANDS])
    band = rng.choice(len(AGE_BANDS), n, p=band_p / band_p.sum())
    lo = np.array([b[1] for b in AGE_BANDS])[band]
    hi = np.array([b[2] for b in AGE_BANDS])[band]
    age = rng.integers(lo, hi + 1)
    value = rng.normal(0, 1, n)  # latent spending power
    tier_score = value + rng.normal(0, 0.6, n)
    tier = (
        np.digitize(tier_score, np.quantile(tier_score, [0.55, 0.80, 0.94])) if n > 10 else np.zeros(n, int)
    )
    # three in four signed up before the data starts; the rest join during the two years
    signup_days = np.where(
        rng.random(n) < 0.75, rng.integers(-5 * 365, 0, n), rng.integers(0, WEEKS * 7 - 60, n)
    )
    return {
        "customer_id": np.array([f"C{first_index + i + 1:07d}" for i in range(n)], dtype=object),
        "age": age,
        "gender": np.where(rng.random(n) < 0.48, "f", "m").astype(object),
        "region": np.array(REGIONS, dtype=object)[rng.choice(len(REGIONS), n, p=REGION_WEIGHTS)],
        "tier": tier,
        "value": value,
        "signup_day": signup_days,
        "taste": rng.normal(0, 1, (n, TASTE_DIM)) / np.sqrt(TASTE_DIM) * TASTE_SCALE,
        "activity": rng.lognormal(0, 0.55, n) * np.exp(0.25 * value),
        "quality": rng.gamma(1.5, 1.0, n),  # proneness to service problems
        "community": rng.gamma(0.6, 1.0, n),
        "decline": np.where(rng.random(n) < 0.35, rng.uniform(0.01, 0.06, n), 0.0),  # engagement drift
        "push_affinity": rng.beta(2, 2, n),  # mean 0.5
    }


def simulate_chunk(
    first_index: int, n: int, catalogue: Catalogue, seed: np.random.SeedSequence
) -> ChunkOutput:
    """Simulate ``n`` customers week by week; return their tables and ground truth."""
    rng = np.random.default_rng(seed)
    cust = _draw_customers(n, first_index, rng)
    season = week_multipliers()
    signup_week = np.floor_divide(cust["signup_day"], 7)

    alive = np.ones(n, dtype=bool)
    churn_week = np.full(n, -1)
    trickle = rng.random(n) < 0.33  # churned customers who keep opening the app now and then
    engagement = rng.normal(0, 0.5, n)
    owned = np.zeros((n, len(CATEGORIES)), dtype=bool)
    # Customers who signed up before the start already own a phone of some age.
    prior = signup_week < 0
    owned[:, C_PHONE] = prior & (rng.random(n) < 0.85)
    phone_week = np.where(owned[:, C_PHONE], rng.integers(-150, 0, n), -10_000)
    for c, p in ((C_WEAR, 0.25), (C_SMART, 0.3), (C_ACC, 0.5), (C_TV, 0.1), (C_LAPTOP, 0.1)):
        owned[:, c] = prior & (rng.random(n) < p)
    tickets_recent = np.zeros(n)  # exponentially decayed count of service tickets
    tier_effect = cust["tier"] * 0.35

    rows: dict[str, list[np.ndarray]] = {"cust": [], "week": [], "kind": [], "cat": [], "n": []}
    monthly: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    hazard_acc = np.zeros(n)
    rate_acc = np.zeros(n)
    weeks_in_month = 0
    week_starts = [START + timedelta(days=7 * w) for w in range(WEEKS)]
    month_of_week = [d.month + 12 * (d.year - 2024) for d in week_starts]  # 1 = January 2024
    alive_at_month_start = alive.copy()

    for w in range(WEEKS):
        started = signup_week <= w
        active = alive & started
        engagement += -cust["decline"] + rng.normal(0, 0.08, n)
        np.clip(engagement, -3, 2, out=engagement)
        eng = np.exp(0.6 * engagement)
        n_eco = owned.sum(axis=1)
        phone_age_years = np.where(owned[:, C_PHONE], (w - phone_week) / 52.0, 0.0)

        # weekly purchase rate
        lam = 0.055 * cust["activity"] * season[w] * eng * (1 + 0.15 * cust["tier"])
        lam = np.where(active, lam, 0.0)
        n_buy = np.minimum(rng.poisson(lam), 3)

        # categories of the purchases (at most 3 draws a week)
        for draw in range(3):
            buyer = np.flatnonzero(n_buy > draw)
            if len(buyer) == 0:
                break
            wts = np.tile(CATEGORY_BASE, (len(buyer), 1))
            no_phone = ~owned[buyer, C_PHONE]
            age_b = phone_age_years[buyer]
            wts[:, C_PHONE] *= np.where(
                no_phone, 3.0, np.where(age_b < 1.0, 0.25, 0.6 + 1.4 * np.clip(age_b - 1.8, 0, 2))
            )
            fresh_phone = (w - phone_week[buyer]) <= 8
            wts[:, C_ACC] *= np.where(fresh_phone, 5.0, 1.0)
            wts[:, C_WEAR] *= np.where(
                fresh_phone & ~owned[buyer, C_WEAR], 4.0, np.where(owned[buyer, C_WEAR], 0.6, 1.0)
            )
            wts[:, C_SMART] *= 1.0 + 0.35 * np.clip(n_eco[buyer] - 1, 0, 4)
            wts[:, C_TV] *= np.where(owned[buyer, C_TV], 0.3, 1.0)
            wts[:, C_LAPTOP] *= np.where(owned[buyer, C_LAPTOP], 0.3, 1.0)
            wts /= wts.sum(axis=1, keepdims=True)
            cat = (rng.random(len(buyer))[:, None] > np.cumsum(wts, axis=1)).sum(axis=1)
            cat = np.minimum(cat, len(CATEGORIES) - 1)
            owned[buyer, cat] = True
            is_phone = cat == C_PHONE
            phone_week[buyer[is_phone]] = w
            rows["cust"].append(buyer)
            rows["week"].append(np.full(len(buyer), w))
            rows["kind"].append(np.zeros(len(buyer), dtype=np.int8))  # 0 = purchase
            rows["cat"].append(cat)
            rows["n"].append(np.ones(len(buyer), dtype=np.int64))

        # other activity, per customer and week: (kind, rate)
        browsing = np.where(active, 0.20 * cust["activity"] * season[w] ** 0.5 * eng, 0.0)
        app_rate = np.where(active, 0.20 * eng, np.where(alive | ~trickle | ~started, 0.0, 0.03))
        ticket_rate = np.where(
            active, 0.004 * cust["quality"] * (1 + 0.5 * n_eco) * (1 + 0.6 * (phone_age_years > 2)), 0.0
        )
        post_rate = np.where(active, 0.05 * cust["community"] * eng, 0.0)
        coupon_rate = np.where(active, 0.012 * (1 + cust["tier"]) * season[w], 0.0)
        push_p = np.where(active, np.clip(PUSH_OPEN_RATE * eng * (0.5 + cust["push_affinity"]), 0, 0.5), 0.0)
        for kind, counts in (
            (1, rng.poisson(browsing)),
            (2, rng.poisson(app_rate)),
            (3, rng.poisson(ticket_rate)),
            (4, rng.poisson(post_rate)),
            (5, rng.poisson(coupon_rate)),
            (6, (rng.random(n) < push_p).astype(np.int64)),
        ):
            who = np.flatnonzero(counts > 0)
            rows["cust"].append(who)
            rows["week"].append(np.full(len(who), w))
            rows["kind"].append(np.full(len(who), kind, dtype=np.int8))
            rows["cat"].append(np.full(len(who), -1))
            rows["n"].append(counts[who].astype(np.int64))
            if kind == 3:
                tickets_recent[who] += counts[who]

        # churn hazard (weekly)
        logit = (
            -6.3
            + 0.55 * tickets_recent
            - 0.9 * engagement
            + 0.45 * np.clip(phone_age_years - 1.5, 0, 3)
            - 0.30 * np.clip(n_eco, 0, 5)
            - tier_effect
            - 0.15 * cust["value"]
        )
        hazard = np.where(active, 1 / (1 + np.exp(-logit)), 0.0)
        churns = active & (rng.random(n) < hazard)
        alive &= ~churns
        churn_week[churns] = w
        tickets_recent *= 0.93

        hazard_acc += hazard
        rate_acc += lam
        weeks_in_month += 1
        if w == WEEKS - 1 or month_of_week[w + 1] != month_of_week[w]:
            monthly.append((month_of_week[w], alive_at_month_start, hazard_acc / weeks_in_month,
                            rate_acc / weeks_in_month))  # fmt: skip
            hazard_acc = np.zeros(n)
            rate_acc = np.zeros(n)
            weeks_in_month = 0
            alive_at_month_start = alive.copy()

    events = _expand_events(rows, cust, catalogue, rng)
    customers = _customers_frame(cust, rng)
    truth_customers = pd.DataFrame(
        {
            "customer_id": cust["customer_id"],
            "churn_ts": pd.to_datetime(
                np.where(churn_week >= 0, churn_week, np.nan) * 7, unit="D", origin=pd.Timestamp(START)
            ).astype("datetime64[us]"),
            "activity": cust["activity"],
            "quality": cust["quality"],
            "engagement_decline": cust["decline"],
        }
        | {f"taste_{d}": cust["taste"][:, d].astype(np.float32) for d in range(TASTE_DIM)}
    )
    truth_monthly = pd.concat(
        [
            pd.DataFrame(
                {
                    "customer_id": cust["customer_id"],
                    "month": pd.Timestamp(2024 + (m - 1) // 12, (m - 1) % 12 + 1, 1),
                    "alive_at_start": alive0,
                    "weekly_hazard": hz.astype(np.float32),
                    "weekly_purchase_rate": rt.astype(np.float32),
                }
            )
            for m, alive0, hz, rt in monthly
        ],
        ignore_index=True,
    )
    truth_monthly["month"] = truth_monthly["month"].astype("datetime64[us]")
    return ChunkOutput(customers, events, truth_customers, truth_monthly)


def _customers_frame(cust: dict[str, np.ndarray], rng: np.random.Generator) -> pd.DataFrame:
    n = len(cust["customer_id"])
    signup = pd.Timestamp(START) + pd.to_timedelta(cust["signup_day"], unit="D")
    signup = signup + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    points = np.round(rng.gamma(1.2, 400 * (1 + 1.5 * cust["tier"])))
    return pd.DataFrame(
        {
            "customer_id": cust["customer_id"],
            "signup_ts": signup.astype("datetime64[us]"),
            "birth_year": (2025 - cust["age"]).astype(np.int64),
            "gender": cust["gender"],
            "region": cust["region"],
            "member_tier": np.array(TIERS, dtype=object)[cust["tier"]],
            "points_balance": points.astype(float),
        }
    )


def _choose_items(
    cust_idx: np.ndarray, category: np.ndarray, week: np.ndarray, taste: np.ndarray, cat: Catalogue,
    rng: np.random.Generator, temperature: float = CHOICE_TEMPERATURE,
) -> np.ndarray:  # fmt: skip
    """Item index for each (customer, category) draw: Gumbel-max over taste . vector / T + popularity."""
    out = np.empty(len(cust_idx), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        rows = np.flatnonzero(category == c)
        if len(rows) == 0:
            continue
        items = np.flatnonzero(cat.category == c)
        vec = cat.vectors[items]  # (m, d)
        for start in range(0, len(rows), 20_000):
            r = rows[start : start + 20_000]
            logits = taste[cust_idx[r]] @ vec.T / temperature + cat.popularity[items]  # (b, m)
            # not yet launched items are not for sale
            logits = np.where(cat.launch_week[items][None, :] <= week[r][:, None], logits, -np.inf)
            gumbel = -np.log(-np.log(rng.random(logits.shape)))
            out[r] = items[np.argmax(logits + gumbel, axis=1)]
    return out


EVENT_KINDS = (
    "purchase",
    "view",
    "app_open",
    "service_ticket",
    "community_post",
    "coupon_redeem",
    "push_open",
)


def _expand_events(
    rows: dict[str, list[np.ndarray]], cust: dict[str, np.ndarray], cat: Catalogue, rng: np.random.Generator
) -> pa.Table:
    c_idx = np.concatenate(rows["cust"])
    week = np.concatenate(rows["week"])
    kind = np.concatenate(rows["kind"])
    category = np.concatenate(rows["cat"])
    count = np.concatenate(rows["n"])
    # one row per event
    c_idx, week, kind, category = (np.repeat(a, count) for a in (c_idx, week, kind, category))
    n = len(c_idx)
    seconds = week.astype(np.int64) * 7 * 86_400 + rng.integers(0, 7 * 86_400, n)

    # browsing views pick a category by the customer's taste too (same item model)
    is_view = kind == 1
    view_cat = rng.choice(len(CATEGORIES), is_view.sum(), p=VIEW_CATEGORY_P)
    category[is_view] = view_cat
    needs_item = (kind == 0) | is_view
    item = np.full(n, -1, dtype=np.int64)
    item[needs_item] = _choose_items(
        c_idx[needs_item], category[needs_item], week[needs_item], cust["taste"], cat, rng
    )

    # the funnel before each purchase: one or two views and an add-to-cart of the same item
    buy = np.flatnonzero(kind == 0)
    n_views = rng.integers(1, 3, len(buy))
    funnel_src = np.repeat(buy, n_views)
    funnel_ts = seconds[funnel_src] - rng.integers(600, 3 * 86_400, len(funnel_src))
    cart_ts = seconds[buy] - rng.integers(60, 3_600, len(buy))
    # returns: ~4% of purchases, 1-30 days later, inside the data
    ret = buy[rng.random(len(buy)) < 0.04]
    ret_ts = seconds[ret] + rng.integers(86_400, 30 * 86_400, len(ret))
    keep_ret = ret_ts <= int((END - START).total_seconds())
    ret, ret_ts = ret[keep_ret], ret_ts[keep_ret]

    type_names = np.array(EVENT_KINDS + ("add_to_cart", "return"), dtype=object)
    all_cust = np.concatenate([c_idx, c_idx[funnel_src], c_idx[buy], c_idx[ret]])
    all_ts = np.concatenate([seconds, funnel_ts, cart_ts, ret_ts])
    all_kind = np.concatenate(
        [kind, np.full(len(funnel_src), 1), np.full(len(buy), 7), np.full(len(ret), 8)]
    ).astype(np.int8)
    all_item = np.concatenate([item, item[funnel_src], item[buy], item[ret]])
    price = cat.price[np.maximum(all_item, 0)]
    is_money = (all_kind == 0) | (all_kind == 8)
    quantity = np.where(is_money | (all_kind == 7), 1, 0)
    amount = np.where(is_money, np.round(price * rng.uniform(0.85, 1.0, len(price)), 2), np.nan)
    purchase_like = is_money | (all_kind == 7)
    chan = np.where(
        purchase_like,
        rng.choice(len(CHANNELS), len(all_kind), p=PURCHASE_CHANNEL_P),
        rng.choice(len(CHANNELS), len(all_kind), p=BROWSE_CHANNEL_P),
    )
    chan = np.where(np.isin(all_kind, (2, 6)), 1, chan)  # app opens and push opens happen in the app
    chan = np.where(all_kind == 3, -1, chan)  # service tickets carry no channel
    all_ts = np.maximum(all_ts, 0)
    order = np.lexsort((all_ts, all_cust))

    def take(values: np.ndarray) -> np.ndarray:
        return values[order]

    micros = take(all_ts).astype(np.int64) * 1_000_000 + rng.integers(0, 1_000_000, len(order))
    ts = pa.array(np.datetime64(START, "us") + micros.astype("timedelta64[us]"))
    item_sorted = take(all_item)
    chan_sorted = take(chan)
    return pa.table(
        {
            "customer_id": pa.array(cust["customer_id"], pa.string()).take(pa.array(take(all_cust))),
            "ts": ts,
            "event_type": pa.array(type_names, pa.string()).take(pa.array(take(all_kind).astype(np.int64))),
            "item_id": pa.array(cat.item_ids, pa.string()).take(
                pa.array(np.where(item_sorted < 0, 0, item_sorted), mask=item_sorted < 0)
            ),
            "quantity": pa.array(take(quantity).astype(np.int64), mask=take(quantity) == 0),
            "amount": pa.array(take(amount), mask=np.isnan(take(amount))),
            "channel": pa.array(CHANNELS, pa.string()).take(
                pa.array(np.where(chan_sorted < 0, 0, chan_sorted), mask=chan_sorted < 0)
            ),
        }
    )


# ---------------------------------------------------------------------------------------------
# the job


def run(cfg: SynthConfig, progress: bool = False) -> SynthResult:
    """Simulate a preset and write events/, customers.parquet, items.parquet and truth/."""
    start = time.perf_counter()
    n_customers, n_items = cfg.sizes()
    out = Path(cfg.out)
    for sub in ("events", "truth/monthly"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    root = np.random.SeedSequence(cfg.seed)
    catalogue_seed, chunks_seed = root.spawn(2)
    catalogue = make_catalogue(n_items, np.random.default_rng(catalogue_seed))
    n_chunks = -(-n_customers // CHUNK_CUSTOMERS)
    chunk_seeds = chunks_seed.spawn(n_chunks)

    events_total = 0
    customer_parts, truth_parts = [], []
    progress_bar = _progress(progress, n_chunks)
    for k in range(n_chunks):
        first = k * CHUNK_CUSTOMERS
        size = min(CHUNK_CUSTOMERS, n_customers - first)
        chunk = simulate_chunk(first, size, catalogue, chunk_seeds[k])
        pq.write_table(chunk.events, out / "events" / f"part-{k:05d}.parquet", compression="zstd")
        chunk.truth_monthly.to_parquet(out / "truth" / "monthly" / f"part-{k:05d}.parquet", index=False)
        customer_parts.append(chunk.customers)
        truth_parts.append(chunk.truth_customers)
        events_total += chunk.events.num_rows
        if progress_bar is not None:
            progress_bar.update(progress_bar.task_ids[0], advance=1, events=events_total)
    if progress_bar is not None:
        progress_bar.stop()

    customers = pd.concat(customer_parts, ignore_index=True)
    customers.to_parquet(out / "customers.parquet", index=False)
    items = catalogue.frame()
    items.to_parquet(out / "items.parquet", index=False)
    pd.concat(truth_parts, ignore_index=True).to_parquet(out / "truth" / "customers.parquet", index=False)
    truth_items = pd.DataFrame(
        {"item_id": catalogue.item_ids, "popularity": catalogue.popularity}
        | {f"vec_{d}": catalogue.vectors[:, d] for d in range(TASTE_DIM)}
    )
    truth_items.to_parquet(out / "truth" / "items.parquet", index=False)
    return SynthResult(
        out=out,
        tables={
            "events": (events_total, out / "events"),
            "customers": (len(customers), out / "customers.parquet"),
            "items": (len(items), out / "items.parquet"),
            "truth": (len(customers), out / "truth"),
        },
        events=events_total,
        seconds=time.perf_counter() - start,
    )


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("simulating customers"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chunks, {task.fields[events]:,} events"),
        TimeElapsedColumn(),
    )
    bar.add_task("synth", total=total, events=0)
    bar.start()
    return bar


# ---------------------------------------------------------------------------------------------
# oracles from the ground truth


def _read_truth(data_dir: Path, name: str) -> pd.DataFrame:
    path = Path(data_dir) / "truth" / name
    if not path.exists():
        raise UserError(f"No ground truth at {path}: only data from `crm data synth` has an oracle.")
    return pd.read_parquet(path)


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
    customers = _read_truth(data_dir, "customers.parquet")[["customer_id", "churn_ts"]]
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


def true_items(data_dir: str | Path) -> pd.DataFrame:
    """The simulator's items: ``item_id``, ``category``, ``popularity``, ``vec_*`` and ``bias``.

    ``bias`` is the popularity plus the log of the base share of the item's category: with
    ``taste . vec / CHOICE_TEMPERATURE`` it is the oracle's score of an item for a customer.
    """
    items = _read_truth(data_dir, "items.parquet")
    catalogue = pd.read_parquet(Path(data_dir) / "items.parquet")[["item_id", "category"]]
    items = items.merge(catalogue, on="item_id")
    base = dict(zip(CATEGORIES, np.log(VIEW_CATEGORY_P), strict=True))
    items["bias"] = items["popularity"].to_numpy() + items["category"].map(base).fillna(-5).to_numpy()
    return items


def oracle_recommendations(
    data_dir: str | Path,
    customer_ids: list[str],
    k: int,
    exclude: dict[str, set[str]] | None = None,
) -> dict[str, list[str]]:
    """Top-``k`` items per customer by true propensity: taste . item vector / T + popularity,
    plus the log of the base share of the item's category; items in ``exclude`` are skipped."""
    customers = _read_truth(data_dir, "customers.parquet").set_index("customer_id")
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
