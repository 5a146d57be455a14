"""The simulated population: customers with latent tastes, the catalogue of items, and how a
customer's taste picks an item inside a category."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.synth.config import (
    AGE_BANDS,
    C_ACC,
    CATEGORY_SPEC,
    CHOICE_TEMPERATURE,
    REGION_WEIGHTS,
    REGIONS,
    START,
    TASTE_DIM,
    TASTE_SCALE,
    TIER_QUANTILES,
    WEEKS,
)
from features.vocab import CATEGORIES, MEMBER_TIERS

CHOICE_BATCH = 20_000  # draws scored at once, so the (draws, items) logits stay small


@dataclass
class Customers:
    """One chunk's customers: what the contract shows of them and their hidden latents."""

    customer_id: np.ndarray  # str
    age: np.ndarray
    gender: np.ndarray
    region: np.ndarray
    tier: np.ndarray  # position in MEMBER_TIERS
    value: np.ndarray  # latent spending power
    signup_day: np.ndarray  # days from START, negative for those who joined before it
    signup_week: np.ndarray
    taste: np.ndarray  # (n, TASTE_DIM)
    activity: np.ndarray
    quality: np.ndarray  # proneness to service problems
    community: np.ndarray
    decline: np.ndarray  # weekly engagement drift
    push_affinity: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_id)


def draw_customers(n: int, first_index: int, rng: np.random.Generator) -> Customers:
    """``n`` customers numbered from ``first_index + 1``."""
    age = _draw_ages(n, rng)
    value = rng.normal(0, 1, n)
    tier = _draw_tiers(value, rng)
    signup_day = _draw_signup_days(n, rng)
    # The keyword arguments are evaluated in order: that order is the order of the draws.
    return Customers(
        customer_id=np.array([f"C{first_index + i + 1:07d}" for i in range(n)], dtype=object),
        age=age,
        gender=np.where(rng.random(n) < 0.48, "f", "m").astype(object),
        region=np.array(REGIONS, dtype=object)[rng.choice(len(REGIONS), n, p=REGION_WEIGHTS)],
        tier=tier,
        value=value,
        signup_day=signup_day,
        signup_week=np.floor_divide(signup_day, 7),
        taste=rng.normal(0, 1, (n, TASTE_DIM)) / np.sqrt(TASTE_DIM) * TASTE_SCALE,
        activity=rng.lognormal(0, 0.55, n) * np.exp(0.25 * value),
        quality=rng.gamma(1.5, 1.0, n),
        community=rng.gamma(0.6, 1.0, n),
        decline=np.where(rng.random(n) < 0.35, rng.uniform(0.01, 0.06, n), 0.0),
        push_affinity=rng.beta(2, 2, n),
    )


def _draw_ages(n: int, rng: np.random.Generator) -> np.ndarray:
    band_p = np.array([b[3] for b in AGE_BANDS])
    band = rng.choice(len(AGE_BANDS), n, p=band_p / band_p.sum())
    lo = np.array([b[1] for b in AGE_BANDS])[band]
    hi = np.array([b[2] for b in AGE_BANDS])[band]
    return rng.integers(lo, hi + 1)


def _draw_tiers(value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tiers follow spending power, with noise; too few customers for quantiles are all standard."""
    n = len(value)
    tier_score = value + rng.normal(0, 0.6, n)
    if n <= 10:
        return np.zeros(n, int)
    return np.digitize(tier_score, np.quantile(tier_score, TIER_QUANTILES))


def _draw_signup_days(n: int, rng: np.random.Generator) -> np.ndarray:
    """Three in four signed up before the data starts; the rest join during the two years."""
    return np.where(rng.random(n) < 0.75, rng.integers(-5 * 365, 0, n), rng.integers(0, WEEKS * 7 - 60, n))


def customers_frame(customers: Customers, rng: np.random.Generator) -> pd.DataFrame:
    """The contract's customers table."""
    n = len(customers)
    signup = pd.Timestamp(START) + pd.to_timedelta(customers.signup_day, unit="D")
    signup = signup + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    points = np.round(rng.gamma(1.2, 400 * (1 + 1.5 * customers.tier)))
    return pd.DataFrame(
        {
            "customer_id": customers.customer_id,
            "signup_ts": signup.astype("datetime64[us]"),
            "birth_year": (2025 - customers.age).astype(np.int64),
            "gender": customers.gender,
            "region": customers.region,
            "member_tier": np.array(MEMBER_TIERS, dtype=object)[customers.tier],
            "points_balance": points.astype(float),
        }
    )


@dataclass
class Catalogue:
    """The brand's items with their hidden vectors and popularity."""

    item_ids: np.ndarray  # (n_items,) str
    category: np.ndarray  # (n_items,) position in CATEGORIES
    subcategory: np.ndarray  # (n_items,) str
    price: np.ndarray  # (n_items,)
    launch_week: np.ndarray  # (n_items,) int, may be negative (launched before the start)
    vectors: np.ndarray  # (n_items, TASTE_DIM)
    popularity: np.ndarray  # (n_items,) log-popularity bias
    active: np.ndarray  # (n_items,) bool

    def frame(self) -> pd.DataFrame:
        """The contract's items table."""
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

    def truth(self) -> pd.DataFrame:
        """The hidden part of the items: popularity and latent vectors."""
        return pd.DataFrame(
            {"item_id": self.item_ids, "popularity": self.popularity}
            | {f"vec_{d}": self.vectors[:, d] for d in range(TASTE_DIM)}
        )


def make_catalogue(n_items: int, rng: np.random.Generator) -> Catalogue:
    """``n_items`` items split over the categories by their catalogue shares (at least 3 each)."""
    category = _item_categories(n_items)
    subcategory = np.empty(n_items, dtype=object)
    price = np.empty(n_items)
    for c, name in enumerate(CATEGORIES):
        idx = np.flatnonzero(category == c)
        subs = CATEGORY_SPEC[name].subcategories
        subcategory[idx] = np.array(subs, dtype=object)[rng.integers(0, len(subs), len(idx))]
        price[idx] = CATEGORY_SPEC[name].median_price * rng.lognormal(0.0, 0.45, len(idx))
    # Item vectors: a category direction plus noise, so taste is partly about categories.
    cat_dirs = rng.normal(0, 1, (len(CATEGORIES), TASTE_DIM))
    vectors = 0.6 * cat_dirs[category] + rng.normal(0, 1, (n_items, TASTE_DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    popularity = rng.normal(0, 0.8, n_items)
    launch_week = rng.integers(-120, WEEKS - 8, n_items)
    active = launch_week > -100  # the oldest models are discontinued
    item_ids = np.array([f"I{i:05d}" for i in range(1, n_items + 1)], dtype=object)
    return Catalogue(item_ids, category, subcategory, price, launch_week, vectors, popularity, active)


def _item_categories(n_items: int) -> np.ndarray:
    shares = np.array([CATEGORY_SPEC[c].catalogue_share for c in CATEGORIES])
    counts = np.maximum(3, np.round(shares / shares.sum() * n_items).astype(int))
    category = np.repeat(np.arange(len(CATEGORIES)), counts)[:n_items]
    if len(category) < n_items:
        category = np.concatenate([category, np.full(n_items - len(category), C_ACC)])
    return category


def choose_items(
    customer: np.ndarray,
    category: np.ndarray,
    week: np.ndarray,
    taste: np.ndarray,
    catalogue: Catalogue,
    rng: np.random.Generator,
) -> np.ndarray:
    """Item index for each (customer, category, week) draw: Gumbel-max over
    ``taste . vector / CHOICE_TEMPERATURE + popularity`` among the items launched by then."""
    out = np.empty(len(customer), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        rows = np.flatnonzero(category == c)
        if len(rows) == 0:
            continue
        items = np.flatnonzero(catalogue.category == c)
        vec = catalogue.vectors[items]  # (m, d)
        for start in range(0, len(rows), CHOICE_BATCH):
            r = rows[start : start + CHOICE_BATCH]
            logits = taste[customer[r]] @ vec.T / CHOICE_TEMPERATURE + catalogue.popularity[items]  # (b, m)
            # not yet launched items are not for sale
            logits = np.where(catalogue.launch_week[items][None, :] <= week[r][:, None], logits, -np.inf)
            gumbel = -np.log(-np.log(rng.random(logits.shape)))
            out[r] = items[np.argmax(logits + gumbel, axis=1)]
    return out
