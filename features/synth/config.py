"""What to simulate: the job's configuration, the calendar and the calibrated constants.

The per-category and per-channel weights are keyed by name and laid out in the order of
``features.vocab``, because the random draws index categories and channels by that position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from features.errors import UserError
from features.vocab import CATEGORIES, CHANNELS, PRESETS, Preset

# -- the calendar -------------------------------------------------------------------------------

START = datetime(2024, 1, 1)
WEEKS = 104  # weekly steps from START: 2024-01-01 .. 2025-12-28, the data ends 2025-12-31
END = datetime(2025, 12, 31, 23, 59, 59)
DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS

PROMOTIONS = (  # (first day, last day, multiplier of shopping activity)
    (date(2024, 2, 3), date(2024, 2, 17), 1.7),  # Spring Festival 2024
    (date(2025, 1, 22), date(2025, 2, 5), 1.7),  # Spring Festival 2025
    (date(2024, 6, 1), date(2024, 6, 18), 2.0),  # mid-June festival
    (date(2025, 6, 1), date(2025, 6, 18), 2.0),
    (date(2024, 11, 1), date(2024, 11, 11), 2.4),  # early-November festival
    (date(2025, 11, 1), date(2025, 11, 11), 2.4),
)

# -- sizes --------------------------------------------------------------------------------------

PRESET_SIZES: dict[str, tuple[int, int]] = {  # customers, items
    "tiny": (2_000, 300),
    "demo": (50_000, 2_000),
    "large": (1_000_000, 5_000),
}
# Customers are simulated in chunks of this many, each with its own child seed, so memory is
# bounded by the chunk, not by the preset.
CHUNK_CUSTOMERS = 50_000

# -- customers ----------------------------------------------------------------------------------

TASTE_DIM = 8
TASTE_SCALE = 2.2  # tastes are N(0, 1) / sqrt(TASTE_DIM) * TASTE_SCALE
CHOICE_TEMPERATURE = 0.35  # of the softmax that picks an item inside its category

AGE_BANDS = (("18-25", 18, 25, 0.285), ("26-35", 26, 35, 0.393), ("36-45", 36, 45, 0.180),
             ("46-55", 46, 55, 0.097), ("56-70", 56, 70, 0.045))  # fmt: skip
REGIONS = ("east", "south", "north", "central", "southwest", "northeast", "northwest")
REGION_WEIGHTS = (0.28, 0.22, 0.16, 0.12, 0.10, 0.07, 0.05)
TIER_QUANTILES = (0.55, 0.80, 0.94)  # of the tier score: where silver, gold and platinum begin

# -- categories ---------------------------------------------------------------------------------

# The brand's shares of revenue net of returns; "other" is tv, laptop, accessory and other.
REVENUE_SHARE_TARGETS = {"phone": 0.40, "smart_home": 0.25, "wearable": 0.15, "other": 0.20}


def revenue_group(category: str) -> str:
    """The group of ``REVENUE_SHARE_TARGETS`` that a category's revenue counts towards."""
    return category if category in REVENUE_SHARE_TARGETS else "other"


class CategorySpec(NamedTuple):
    """One category of the brand's catalogue and of its customers' behaviour."""

    catalogue_share: float  # of the items
    subcategories: tuple[str, ...]
    median_price: float
    # Base weight of the category of a purchase besides the phone (phones follow their lifecycle,
    # below), before the cross-sell state multiplies it; with PURCHASE_RATE, calibrated so that the
    # revenue shares meet REVENUE_SHARE_TARGETS (the tests check them).
    purchase_weight: float
    view_share: float  # browsing: phones are looked at far more often than they are bought
    # Share of the category's purchases, the phone lifecycle and the cross-sell state included:
    # the oracle's category prior (a test keeps it in step with the simulated purchases).
    purchase_share: float


CATEGORY_SPEC = {
    "phone": CategorySpec(0.22, ("flagship", "midrange", "budget", "foldable"), 520.0, 0.0, 0.30, 0.108),
    "smart_home": CategorySpec(
        0.22, ("speaker", "camera", "lighting", "router", "vacuum", "plug"), 85.0, 0.368, 0.30, 0.424
    ),
    "wearable": CategorySpec(0.16, ("watch", "band", "earbuds"), 110.0, 0.412, 0.18, 0.208),
    "tv": CategorySpec(0.08, ("oled", "led", "projector"), 700.0, 0.024, 0.04, 0.014),
    "laptop": CategorySpec(0.08, ("ultrabook", "gaming", "tablet"), 900.0, 0.024, 0.04, 0.013),
    "accessory": CategorySpec(
        0.18, ("case", "charger", "screen_protector", "cable", "power_bank"), 25.0, 0.122, 0.10, 0.202
    ),
    "other": CategorySpec(0.06, ("gift_card", "service_plan", "bundle"), 50.0, 0.049, 0.04, 0.031),
}
C_PHONE, C_SMART, C_WEAR, C_TV, C_LAPTOP, C_ACC = (
    CATEGORIES.index(c) for c in ("phone", "smart_home", "wearable", "tv", "laptop", "accessory")
)
CATEGORY_BASE = np.array([CATEGORY_SPEC[c].purchase_weight for c in CATEGORIES])
VIEW_CATEGORY_P = np.array([CATEGORY_SPEC[c].view_share for c in CATEGORIES])
PURCHASE_CATEGORY_P = np.array([CATEGORY_SPEC[c].purchase_share for c in CATEGORIES])
# Who signed up before the data starts already owns these (besides a phone), with these chances;
# the draws run in this order.
PRIOR_OWNERSHIP = {"wearable": 0.25, "smart_home": 0.3, "accessory": 0.5, "tv": 0.1, "laptop": 0.1}

# -- the phone lifecycle ------------------------------------------------------------------------

# A customer's own phone is replaced when it ages: the weekly chance is logistic in the phone's
# age, near zero in its first year and close to PHONE_REPLACE_MAX from about three years on, so a
# phone lasts two to three years. Customers who buy more and engage more replace sooner.
PHONE_REPLACE_MAX = 0.04
PHONE_REPLACE_MID_YEARS = 2.3
PHONE_REPLACE_SPREAD_YEARS = 0.2
# Without a phone from the brand: a customer who just signed up came for one (the chance fades
# over the first weeks); an older customer without one carries another brand's phone and buys a
# first one from the brand now and then.
FIRST_PHONE_AT_SIGNUP = 0.25
FIRST_PHONE_FADE_WEEKS = 4.0
FIRST_PHONE_LATER = 0.008
FRESH_PHONE_WEEKS = 8  # a phone this young drives accessory and wearable purchases
# In each of those weeks after the phone's, besides the usual purchases, the expected number of
# purchases that go with the new phone: an accessory, or a first wearable for those without one.
FRESH_PHONE_CROSS_SELL = 0.15
FRESH_PHONE_WEARABLE_SHARE = 0.4

# -- channels and engagement --------------------------------------------------------------------

PURCHASE_CHANNEL_P = tuple(
    {"mall": 0.34, "app": 0.30, "offline_store": 0.22, "social": 0.10, "partner": 0.04}[c] for c in CHANNELS
)
BROWSE_CHANNEL_P = tuple(
    {"mall": 0.40, "app": 0.40, "offline_store": 0.02, "social": 0.16, "partner": 0.02}[c] for c in CHANNELS
)
APP_CHANNEL = CHANNELS.index("app")
PUSH_OPEN_RATE = 0.045  # one push a week to every customer
# Purchases per week of an average customer outside promotions, besides the phone lifecycle and
# the purchases that go with a new phone.
PURCHASE_RATE = 0.0362
MAX_PURCHASES_PER_WEEK = 3
RETURN_RATE = 0.04  # share of purchases returned within a month
# Share of browsing views that put the item in the cart without buying it (an abandoned cart).
CART_ABANDON_RATE = 0.3


# -- retention campaigns (features.synth.campaigns holds the schedule and the responses) -----------

AUDIENCE_SHARE = 0.8  # of the eligible customers of average risk, drawn into a campaign's audience
AUDIENCE_RISK_CAP = 4.0  # the relative risk a customer already gone is drawn with
AUDIENCE_MIN_WEEKS = 8  # eligible: signed up at least this long ago ...
GONE_WEEKS_VISIBLE = 26  # ... and alive, or gone so recently that the brand cannot tell yet
CONTROL_SHARE = 0.3  # of an audience, held out
# No campaign reaches a customer while an earlier one's outcome is still being read (its retention
# window ends 17 weeks after its start), so each campaign's arms are compared undisturbed.
CONTACT_GAP_WEEKS = 17
EFFECT_WEEKS = 13  # how long an offer changes the churn hazard and the purchases
RESPONSE_INDIFFERENT_SHARE = 0.1  # customers whom no offer moves
RESPONSE_AGAINST_SHARE = 0.06  # customers whom a marketing offer puts off
OFFER_COST = {"coupon": 10.0, "service_call": 15.0, "upgrade_offer": 30.0, "bundle": 20.0, "push": 0.1}
CAMPAIGN_CHANNEL = {
    "coupon": "app",
    "service_call": None,
    "upgrade_offer": "mall",
    "bundle": "mall",
    "push": "app",
}
# Coupon redemptions scale with price sensitivity by (base + slope * sensitivity), about 1 on average.
COUPON_SENSITIVITY = (0.1, 1.8)

# -- marketing exposures ---------------------------------------------------------------------------

# The brand's ad funnels: (clicks per impression, purchases per impression) by channel.
AD_RATES = {"mall": (0.042, 0.011), "social": (0.050, 0.022)}
# Share of the channel's purchases that followed an ad click (the rest came without an ad).
AD_ATTRIBUTED_SHARE = {"mall": 0.03, "social": 0.06}
AD_LEAD_SECONDS = (3 * DAY_SECONDS, 4 * DAY_SECONDS)  # from the ad click to the purchase
PUSH_OPEN_SHARE = 0.3  # of the pushes sent, opened: the unopened ones are logged too


@dataclass
class SynthConfig:
    """What to simulate. ``customers``/``items`` override the preset's sizes."""

    preset: Preset = "tiny"
    seed: int = 42
    out: Path = Path("out/data")
    customers: int | None = None
    items: int | None = None

    def sizes(self) -> tuple[int, int]:
        """The number of customers and items to simulate."""
        if self.preset not in PRESETS:
            raise UserError(f"Unknown preset {self.preset!r}: expected one of {', '.join(PRESETS)}.")
        n_customers, n_items = PRESET_SIZES[self.preset]
        return self.customers or n_customers, self.items or n_items
