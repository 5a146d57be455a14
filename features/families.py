"""Declared feature families of the customer snapshot.

The families are declared once, at module level: a family has a name, a version, a
description, its entity (``customer_id``), its windows and a typed list of features; each
feature has a description and a ``phrase`` that turns its value into words a marketer
understands (used for churn reasons). Readers of the schema (the feature names and types, the
version, the reference table) use the declarations as they are; only the SQL needs a date.

A feature's SQL is an expression over three relations the snapshot query provides:

- ``agg``: one pass over the events before ``as_of`` grouped by customer (``FILTER`` clauses);
- ``own``: purchases joined with items (category mix, phone age);
- ``c``: the customers table (profile, loyalty).

An expression that depends on the as-of date or the engine is a function of both, rendered by
:meth:`Feature.render`. The expressions use only functions that DuckDB and Spark SQL share; the
few that differ go through :class:`Dialect`. ``python -m features.families`` prints the
reference table of ``docs/features.md``.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from features.vocab import (
    ACTIVITY_EVENT_TYPES,
    CHANNELS,
    ECOSYSTEM,
    ENGAGED_EVENT_TYPES,
    EVENT_TYPES,
    EXPOSURE_EVENT_TYPES,
    MEMBER_TIERS,
    TIER_RANK,
    UNKNOWN_TIER,
)

FEATURE_SET_NAME = "customer_snapshot"
FEATURE_SET_MAJOR = 1  # bump on a change of meaning that old models must not silently accept
ENTITY = "customer_id"  # every family describes one customer: one snapshot row each
WINDOWS = (7, 30, 90, 365)
PUSHES_PER_WEEK = 1  # the brand sends one campaign push a week; opens per push assume that rate
DECAY_DAYS = 120  # the longest time constant of the weighted counts
# The digest of the definitions renders the date-dependent SQL at this one fixed date, so the
# version never depends on a snapshot's date (and stays the one earlier models recorded).
DIGEST_AS_OF = datetime(2000, 1, 1)

Dtype = Literal["int", "float", "str"]


@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings that differ between DuckDB and Spark SQL."""

    name: str

    def ts(self, value: datetime) -> str:
        """A timestamp literal."""
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"

    def epoch_us(self, expr: str) -> str:
        """Microseconds since 1970 as an integer: the same exact arithmetic on both engines."""
        return f"epoch_us({expr})" if self.name == "duckdb" else f"unix_micros({expr})"

    def days_between(self, start: str, end: str) -> str:
        """Days (fractional) from the timestamp ``start`` to the timestamp ``end``."""
        # integer microseconds, then one double division (a decimal literal would make Spark
        # divide in DECIMAL and round differently)
        return f"(CAST({self.epoch_us(end)} - {self.epoch_us(start)} AS DOUBLE) / 86400000000)"

    def days_before(self, expr: str, as_of: datetime) -> str:
        """Days (fractional) from ``expr`` to ``as_of``."""
        return self.days_between(expr, self.ts(as_of))


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")

# A feature's SQL: a fixed expression, or one rendered for an as-of date and a dialect.
Sql = str | Callable[[datetime, Dialect], str]


@dataclass(frozen=True)
class Level:
    """One value of a feature defined by rules, the rule in words and as a SQL condition.

    The feature's SQL is a CASE over its levels in order: the first level whose condition holds
    gives the value; the last level, without a condition, is the rest.
    """

    value: str
    rule: str  # the rule in words, for the feature reference
    when: Sql | None = None  # None: the level of every row no earlier rule took


def case_sql(levels: tuple[Level, ...]) -> Sql:
    """The CASE expression of ``levels`` (the last one, without a condition, is the ELSE)."""

    def sql(as_of: datetime, d: Dialect) -> str:
        *ruled, rest = levels
        whens = " ".join(
            f"WHEN {lvl.when if isinstance(lvl.when, str) else lvl.when(as_of, d)} THEN '{lvl.value}'"
            for lvl in ruled
        )
        return f"CASE {whens} ELSE '{rest.value}' END"

    return sql


@dataclass(frozen=True)
class Feature:
    """One column of the snapshot: its type, its meaning in words and its SQL."""

    name: str
    dtype: Dtype
    description: str
    sql: Sql  # an expression in the snapshot's final SELECT
    phrase: str = ""  # e.g. "{value:.0f} service tickets in the last 90 days"; "" = no reason text
    window_days: int | None = None
    missing: str = ""  # the words for a null value, e.g. "has never bought" (nullable features only)
    levels: tuple[Level, ...] = ()  # a categorical feature defined by rules: its values and rules

    def render(self, as_of: datetime, dialect: Dialect = DUCKDB) -> str:
        """The feature's SQL expression at ``as_of`` in ``dialect``."""
        return self.sql if isinstance(self.sql, str) else self.sql(as_of, dialect)

    def typed_sql(self, as_of: datetime, dialect: Dialect = DUCKDB) -> str:
        """The expression cast to the declared type.

        Counts are never null, so files written by the engine need no pandas pass to be right
        (the same spelling on DuckDB and Spark).
        """
        expr = self.render(as_of, dialect)
        if self.dtype == "int":
            return f"CAST(coalesce({expr}, 0) AS BIGINT)"
        if self.dtype == "float":
            return f"CAST({expr} AS DOUBLE)"
        return f"CAST({expr} AS STRING)"

    def say(self, value: float | str | None) -> str:
        """The feature's value in words, for churn reasons.

        ``phrase`` may use ``{value}``, ``{months}`` (value / 30.44) and ``{years}`` (value / 365.25);
        a null (None or NaN) reads as ``missing``.
        """
        if value is None or (isinstance(value, float) and value != value):
            return self.missing or f"{self.description.lower()}: unknown"
        if not self.phrase:
            return f"{self.name} = {value}"
        if isinstance(value, int | float):
            return self.phrase.format(value=value, months=value / 30.44, years=value / 365.25)
        return self.phrase.format(value=value)


@dataclass(frozen=True)
class FeatureFamily:
    """Features declared and versioned together, all describing one ``entity``."""

    name: str
    version: int
    description: str
    features: tuple[Feature, ...]
    windows: tuple[int, ...] = ()
    entity: str = ENTITY
    # False: an attribute of the customer for lists and filters, not an input of the churn model
    model_input: bool = True

    def select_sql(self, as_of: datetime, dialect: Dialect = DUCKDB) -> str:
        """The family's typed columns of the snapshot's final SELECT."""
        return ",\n  ".join(f"{f.typed_sql(as_of, dialect)} AS {f.name}" for f in self.features)


# -- the relation ``agg``: one pass over coded events ------------------------------------------

EVENT_CODES = {name: code for code, name in enumerate(EVENT_TYPES)}  # the order of vocab.EVENT_TYPES


def coded_events_sql(as_of: datetime, d: Dialect) -> str:
    """Events before ``as_of`` with small-integer codes, so the many FILTERs compare integers.

    ``et``: event type code; ``ch``: channel code; ``wb``: the smallest window holding the event
    (0: 7 days, 1: 30, 2: 90, 3: 365, 4: older); ``signed_amount``: revenue, refunds negative;
    ``decay``: ``exp(-days from the event to as_of / 120)``, the weight of the exponentially
    weighted counts (its square weighs with a 60-day time constant, its fourth power with 30).
    """
    et = "CASE event_type " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in EVENT_CODES.items()) + " END"
    ch = "CASE channel " + " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(CHANNELS)) + " END"
    wb = (
        "CASE "
        + " ".join(f"WHEN ts >= {d.ts(as_of - timedelta(days=w))} THEN {i}" for i, w in enumerate(WINDOWS))
        + f" ELSE {len(WINDOWS)} END"
    )
    signed = "CASE WHEN event_type = 'purchase' THEN amount WHEN event_type = 'return' THEN -amount END"
    return (
        f"SELECT customer_id, ts, CAST({et} AS TINYINT) AS et, CAST({ch} AS TINYINT) AS ch,"
        f" CAST({wb} AS TINYINT) AS wb, {signed} AS signed_amount,"
        f" exp(-{d.days_before('ts', as_of)} / {DECAY_DAYS}) AS decay"
        f" FROM events WHERE ts < {d.ts(as_of)} AND customer_id IS NOT NULL"
    )


def _count(event: str, window: int) -> str:
    """Events of one type in the last ``window`` days (``wb`` is the window bucket)."""
    return f"count(*) FILTER (WHERE et = {EVENT_CODES[event]} AND wb <= {WINDOWS.index(window)})"


def _revenue_aggregates() -> list[str]:
    """Purchases and net revenue per window (``ts >= as_of - w days`` is ``wb <= index of w``)."""
    purchase, refund = EVENT_CODES["purchase"], EVENT_CODES["return"]
    exprs = []
    for i, w in enumerate(WINDOWS):
        exprs += [
            f"count(*) FILTER (WHERE et = {purchase} AND wb <= {i}) AS purchases_{w}d",
            # restricted to purchases and returns (the only rows with a signed amount), so the
            # aggregate touches only a small share of the rows
            f"sum(signed_amount) FILTER (WHERE et IN ({purchase}, {refund}) AND wb <= {i})"
            f" AS net_revenue_{w}d",
        ]
    return exprs


def _activity_aggregates(engaged: str) -> list[str]:
    """First and last timestamps, and the counts of one event type or of engaged events."""
    purchase = EVENT_CODES["purchase"]
    return [
        f"count(*) FILTER (WHERE et = {purchase}) AS purchases_total",
        f"max(ts) FILTER (WHERE et = {purchase}) AS last_purchase_ts",
        f"min(ts) FILTER (WHERE et = {purchase}) AS first_purchase_ts",
        "max(ts) AS last_event_ts",
        "min(ts) AS first_event_ts",
        f"{_count('app_open', 30)} AS app_opens_30d",
        f"{_count('app_open', 90)} AS app_opens_90d",
        f"{_count('view', 30)} AS views_30d",
        f"{_count('view', 90)} AS views_90d",
        f"{_count('add_to_cart', 90)} AS carts_90d",
        f"{_count('community_post', 90)} AS community_posts_90d",
        f"count(*) FILTER (WHERE {engaged} AND wb <= {WINDOWS.index(30)}) AS engaged_30d",
        f"count(*) FILTER (WHERE {engaged} AND wb = {WINDOWS.index(90)}) AS engaged_prev_60d",
        f"{_count('service_ticket', 90)} AS service_tickets_90d",
        f"{_count('service_ticket', 365)} AS service_tickets_365d",
        f"{_count('return', 365)} AS returns_365d",
        f"{_count('coupon_redeem', 365)} AS coupons_365d",
        f"{_count('push_open', 90)} AS push_opens_90d",
    ]


def window_aggregates() -> list[str]:
    """The one-pass aggregates over coded events (see :func:`coded_events_sql`)."""
    engaged = "et IN (" + ", ".join(str(EVENT_CODES[k]) for k in ENGAGED_EVENT_TYPES) + ")"
    # exponentially weighted counts of engaged events: an event ``a`` days old counts
    # exp(-a / tau), the level of activity now, less noisy than one window and without its cliff
    # edge. One exp per row: the 60- and 30-day weights are powers of the 120-day one.
    weighted = [
        f"sum({weight}) FILTER (WHERE {engaged}) AS engaged_weighted_{tau}d"
        for tau, weight in ((120, "decay"), (60, "decay * decay"), (30, "(decay * decay) * (decay * decay)"))
    ]
    # the customer's own events only: a push or an ad the brand sent says nothing of where the
    # customer shops, and a heavy push schedule would otherwise read as an app customer
    exposure = ", ".join(str(EVENT_CODES[k]) for k in EXPOSURE_EVENT_TYPES)
    channels = [
        f"count(*) FILTER (WHERE ch = {i} AND wb <= {WINDOWS.index(365)} AND et NOT IN ({exposure}))"
        f" AS channel_{c}_365d"
        for i, c in enumerate(CHANNELS)
    ]
    return (
        _revenue_aggregates() + _activity_aggregates(engaged) + weighted + channels + _lifecycle_aggregates()
    )


def _lifecycle_aggregates() -> list[str]:
    """The last activity event (``vocab.ACTIVITY_EVENT_TYPES``): how long a customer has been quiet."""
    active = "et IN (" + ", ".join(str(EVENT_CODES[k]) for k in ACTIVITY_EVENT_TYPES) + ")"
    return [f"max(ts) FILTER (WHERE {active}) AS last_active_ts"]


_window_aggregates = window_aggregates  # the name bench/features.py imports


# -- SQL shapes the declarations share --------------------------------------------------------

CHANNEL_EVENTS_365D = "(" + " + ".join(f"coalesce(agg.channel_{c}_365d, 0)" for c in CHANNELS) + ")"
AGE_BANDS = ((25, "18-25"), (35, "26-35"), (45, "36-45"), (55, "46-55"))  # (oldest age, band)
OLDEST_BAND = "56+"
LOWEST_TIER, HIGHEST_TIER = MEMBER_TIERS[0], MEMBER_TIERS[-1]


ECOSYSTEM_DEPTH_SQL = "(" + " + ".join(f"coalesce(own.owns_{cat}, 0)" for cat in ECOSYSTEM) + ")"


def _share(num: str, den: str) -> str:
    return f"CASE WHEN {den} > 0 THEN {num} / CAST({den} AS DOUBLE) ELSE 0.0 END"


def _days_since(column: str) -> Sql:
    """Days from the timestamp ``column`` to the as-of date."""

    def sql(as_of: datetime, d: Dialect) -> str:
        return d.days_before(column, as_of)

    return sql


def _purchase_span(_: datetime, d: Dialect) -> str:
    return d.days_between("agg.first_purchase_ts", "agg.last_purchase_ts")


def _recency_over_purchase_gap(as_of: datetime, d: Dialect) -> str:
    return (
        f"CASE WHEN agg.purchases_total > 1 THEN {d.days_before('agg.last_purchase_ts', as_of)}"
        f" / ({_purchase_span(as_of, d)} / (agg.purchases_total - 1) + 1) END"
    )


def _age(as_of: datetime, _: Dialect) -> str:
    return f"CAST({as_of.year} - c.birth_year AS DOUBLE)"


def _age_band(as_of: datetime, _: Dialect) -> str:
    bands = " ".join(f"WHEN {as_of.year} - c.birth_year <= {top} THEN '{band}'" for top, band in AGE_BANDS)
    return f"CASE WHEN c.birth_year IS NULL THEN 'unknown' {bands} ELSE '{OLDEST_BAND}' END"


def _tenure(as_of: datetime, d: Dialect) -> str:
    return f"greatest({d.days_before('coalesce(c.signup_ts, agg.first_event_ts)', as_of)}, 0.0)"


def _words(category: str) -> str:
    return category.replace("_", " ")


def _count_feature(name: str, description: str, phrase: str, window: int) -> Feature:
    """An event count read from ``agg`` (0 for a customer without such events)."""
    return Feature(name, "int", description, f"coalesce(agg.{name}, 0)", phrase, window)


# -- the families -------------------------------------------------------------------------------


def _rfm_window(w: int) -> tuple[Feature, Feature]:
    return (
        _count_feature(
            f"purchases_{w}d",
            f"Purchases in the last {w} days",
            f"{{value:.0f}} purchases in the last {w} days",
            w,
        ),
        Feature(
            f"net_revenue_{w}d",
            "float",
            f"Revenue of purchases minus refunds of returns in the last {w} days",
            f"coalesce(agg.net_revenue_{w}d, 0.0)",
            f"spent {{value:,.0f}} in the last {w} days",
            w,
        ),
    )


RFM = FeatureFamily(
    "rfm",
    1,
    "Recency, frequency and monetary value of purchases over 7/30/90/365 days.",
    tuple(f for w in WINDOWS for f in _rfm_window(w))
    + (
        Feature(
            "purchases_total",
            "int",
            "Purchases ever, before the as-of date",
            "coalesce(agg.purchases_total, 0)",
            "{value:.0f} purchases in total",
        ),
        Feature(
            "days_since_last_purchase",
            "float",
            "Days since the last purchase (null: never bought)",
            _days_since("agg.last_purchase_ts"),
            "last purchase {value:.0f} days ago",
            missing="has never bought",
        ),
        Feature(
            "customer_value",
            "float",
            "Customer value: net revenue of the last 365 days (the revenue at stake)",
            "greatest(coalesce(agg.net_revenue_365d, 0.0), 0.0)",
            "worth {value:,.0f} a year",
        ),
        # the inputs of buy-till-you-die models (BG/NBD: frequency, recency t_x, age T), which
        # keep their meaning whatever the length of the history before the as-of date
        Feature(
            "days_since_first_purchase",
            "float",
            "Days since the first purchase (null: never bought)",
            _days_since("agg.first_purchase_ts"),
            "first purchase {value:.0f} days ago",
            missing="has never bought",
        ),
        Feature(
            "purchase_span_days",
            "float",
            "Days between the first and the last purchase (null: never bought)",
            _purchase_span,
            "bought over {value:.0f} days",
            missing="has never bought",
        ),
        Feature(
            "recency_over_purchase_gap",
            "float",
            "Days since the last purchase over the mean gap between purchases (null: under 2 purchases)",
            _recency_over_purchase_gap,
            "overdue: {value:.1f} times the usual gap since the last purchase",
            missing="fewer than two purchases",
        ),
    ),
    WINDOWS,
)

ENGAGEMENT = FeatureFamily(
    "engagement",
    2,  # v2: exponentially weighted levels of activity
    "App opens, views, carts and community posts, the trend of the last 30 days against the"
    " 60 before, and exponentially weighted levels of activity.",
    tuple(
        Feature(
            f"engaged_weighted_{tau}d",
            "float",
            f"Engaged events weighted by exp(-days ago / {tau}): the recent level of activity",
            f"coalesce(agg.engaged_weighted_{tau}d, 0.0)",
            f"about {{value:.0f}} recent app and shop interactions ({tau}-day weighting)",
            tau,  # the time constant of the weighting
        )
        for tau in (30, 60, 120)
    )
    + (
        _count_feature(
            "app_opens_30d", "App opens in the last 30 days", "{value:.0f} app opens in the last 30 days", 30
        ),
        _count_feature(
            "app_opens_90d", "App opens in the last 90 days", "{value:.0f} app opens in the last 90 days", 90
        ),
        _count_feature(
            "views_30d",
            "Product views in the last 30 days",
            "{value:.0f} product views in the last 30 days",
            30,
        ),
        _count_feature(
            "views_90d",
            "Product views in the last 90 days",
            "{value:.0f} product views in the last 90 days",
            90,
        ),
        _count_feature(
            "carts_90d",
            "Add-to-carts in the last 90 days",
            "{value:.0f} add-to-carts in the last 90 days",
            90,
        ),
        _count_feature(
            "community_posts_90d",
            "Community posts in the last 90 days",
            "{value:.0f} community posts in the last 90 days",
            90,
        ),
        Feature(
            "engagement_trend",
            "float",
            "Engaged events of the last 30 days over the monthly mean of the 60 days before "
            "(1 = steady, below 1 = falling)",
            "(CAST(coalesce(agg.engaged_30d, 0) AS DOUBLE) + 1)"
            " / (CAST(coalesce(agg.engaged_prev_60d, 0) AS DOUBLE) / 2 + 1)",
            "engagement at {value:.0%} of its previous level",
            90,
        ),
        Feature(
            "days_since_last_event",
            "float",
            "Days since any event (null: no event yet)",
            _days_since("agg.last_event_ts"),
            "no activity for {value:.0f} days",
            missing="no activity yet",
        ),
    ),
    (30, 60, 90, 120),
)

ECOSYSTEM_FAMILY = FeatureFamily(
    "ecosystem",
    2,  # v2: depth counts the brand's ecosystem categories only (v1 counted any category)
    "Category mix of purchases and ecosystem depth (distinct ecosystem categories owned).",
    (
        Feature(
            "ecosystem_depth",
            "int",
            "Distinct ecosystem categories bought (" + ", ".join(_words(c) for c in ECOSYSTEM) + ")",
            ECOSYSTEM_DEPTH_SQL,
            "owns {value:.0f} product categories",
        ),
        Feature(
            "phone_share",
            "float",
            "Share of purchases that were phones",
            _share("coalesce(own.phone_purchases, 0)", "coalesce(own.item_purchases, 0)"),
            "{value:.0%} of purchases were phones",
        ),
    )
    + tuple(
        Feature(
            f"owns_{cat}",
            "int",
            f"Has bought a {_words(cat)} product",
            f"coalesce(own.owns_{cat}, 0)",
            f"owns a {_words(cat)} device" if cat != "accessory" else "owns accessories",
        )
        for cat in ECOSYSTEM
    ),
)

PHONE_AGE = FeatureFamily(
    "phone_age",
    1,
    "Age of the customer's phone: days since the last phone purchase.",
    (
        Feature(
            "phone_age_days",
            "float",
            "Days since the last phone purchase (null: no phone bought)",
            _days_since("own.last_phone_ts"),
            "phone is {months:.0f} months old",
            missing="has no phone from us",
        ),
    ),
)

SERVICE = FeatureFamily(
    "service",
    1,
    "After-sales service: tickets and returns.",
    (
        _count_feature(
            "service_tickets_90d",
            "Service tickets in the last 90 days",
            "{value:.0f} service tickets in the last 90 days",
            90,
        ),
        _count_feature(
            "service_tickets_365d",
            "Service tickets in the last 365 days",
            "{value:.0f} service tickets in the last year",
            365,
        ),
        _count_feature(
            "returns_365d", "Returns in the last 365 days", "{value:.0f} returns in the last year", 365
        ),
        Feature(
            "return_rate_365d",
            "float",
            "Returns per purchase in the last 365 days",
            _share("coalesce(agg.returns_365d, 0)", "coalesce(agg.purchases_365d, 0)"),
            "returned {value:.0%} of purchases",
            365,
        ),
    ),
    (90, 365),
)

LOYALTY = FeatureFamily(
    "loyalty",
    1,
    "Member tier, points and coupons.",
    (
        Feature(
            "member_tier",
            "str",
            "Member tier",
            f"coalesce(c.member_tier, '{UNKNOWN_TIER}')",
            "{value} member",
        ),
        Feature(
            "tier_rank",
            "int",
            f"Member tier as a rank ({LOWEST_TIER} 0 .. {HIGHEST_TIER} {TIER_RANK[HIGHEST_TIER]})",
            "CASE c.member_tier "
            + " ".join(f"WHEN '{t}' THEN {r}" for t, r in TIER_RANK.items())
            + " ELSE 0 END",
            "tier rank {value:.0f}",
        ),
        Feature(
            "points_balance",
            "float",
            "Points balance",
            "coalesce(c.points_balance, 0.0)",
            "{value:,.0f} loyalty points",
        ),
        _count_feature(
            "coupons_365d",
            "Coupons redeemed in the last 365 days",
            "{value:.0f} coupons redeemed in the last year",
            365,
        ),
    ),
    (365,),
)

CHANNEL_MIX = FeatureFamily(
    "channel_mix",
    2,
    "Share of the last year's events per channel: the customer's own events, not the pushes and ads"
    " the brand sent.",
    tuple(
        Feature(
            f"channel_share_{ch}",
            "float",
            f"Share of the last 365 days' events in the {_words(ch)} channel",
            _share(f"coalesce(agg.channel_{ch}_365d, 0)", CHANNEL_EVENTS_365D),
            f"{{value:.0%}} of activity in the {_words(ch)} channel",
            365,
        )
        for ch in CHANNELS
    ),
    (365,),
)

CAMPAIGN_RESPONSE = FeatureFamily(
    "campaign_response",
    1,
    f"Push opens, and opens per push assuming {PUSHES_PER_WEEK} push a week.",
    (
        _count_feature(
            "push_opens_90d",
            "Push notifications opened in the last 90 days",
            "opened {value:.0f} pushes in the last 90 days",
            90,
        ),
        Feature(
            "push_open_rate_90d",
            "float",
            "Push opens per push sent in the last 90 days",
            f"CAST(coalesce(agg.push_opens_90d, 0) AS DOUBLE) / ({PUSHES_PER_WEEK} * CAST(90 AS DOUBLE) / 7)",
            "opens {value:.0%} of pushes",
            90,
        ),
    ),
    (90,),
)

PROFILE = FeatureFamily(
    "profile",
    1,
    "Age, age band, gender, region and tenure.",
    (
        Feature(
            "age",
            "float",
            "Age in years at the as-of date",
            _age,
            "{value:.0f} years old",
            missing="age unknown",
        ),
        Feature(
            "age_band",
            "str",
            "Age band (" + ", ".join(band for _, band in AGE_BANDS) + f", {OLDEST_BAND})",
            _age_band,
            "aged {value}",
        ),
        Feature("gender", "str", "Gender", "coalesce(c.gender, 'unknown')", "gender {value}"),
        Feature("region", "str", "Region", "coalesce(c.region, 'unknown')", "lives in the {value} region"),
        Feature(
            "tenure_days",
            "float",
            "Days since sign-up (or the first event when the sign-up date is unknown)",
            _tenure,
            "customer for {years:.1f} years",
        ),
    ),
)

# -- lifecycle: the customer's stage, from the aggregates above -----------------------------------

# The thresholds of the stage rules, measured against the simulator's truth on the demo preset
# (docs/benchmarks.md has the figures).
LAPSED_QUIET_DAYS = 60  # no activity event for this long: lapsed
NEW_DAYS = 90  # a first purchase this recent: new
LOW_ENGAGEMENT = 3.0  # engaged_weighted_60d under this: at risk (one engaged event a week is about 8.6)
FALLING_SHARE = 0.5  # the 30-day weighted level per day under this share of the 120-day one: at risk
LOYAL_CATEGORIES = 3  # ecosystem categories owned ...
LOYAL_DAYS = 365  # ... by a customer whose first purchase is at least this old: loyal

ACTIVITY_WORDS = ", ".join(_words(t) for t in ACTIVITY_EVENT_TYPES)


def _quiet_days(as_of: datetime, d: Dialect) -> str:
    """Days since the last activity event (since the sign-up or the first event without one)."""
    return d.days_before("coalesce(agg.last_active_ts, c.signup_ts, agg.first_event_ts)", as_of)


def _lapsed(as_of: datetime, d: Dialect) -> str:
    return f"{_quiet_days(as_of, d)} > {LAPSED_QUIET_DAYS}"


def _new(as_of: datetime, d: Dialect) -> str:
    return f"{d.days_before('agg.first_purchase_ts', as_of)} <= {NEW_DAYS}"


def _at_risk(_: datetime, __: Dialect) -> str:
    low = f"coalesce(agg.engaged_weighted_60d, 0.0) < {LOW_ENGAGEMENT}"
    # each weighted count is about the daily rate times its time constant: compare the rates
    falling = (
        f"coalesce(agg.engaged_weighted_30d, 0.0) / 30"
        f" < {FALLING_SHARE} * coalesce(agg.engaged_weighted_120d, 0.0) / 120"
    )
    return f"({low} OR {falling})"


def _loyal(as_of: datetime, d: Dialect) -> str:
    lasting = f"{d.days_before('agg.first_purchase_ts', as_of)} >= {LOYAL_DAYS}"
    return f"({ECOSYSTEM_DEPTH_SQL} >= {LOYAL_CATEGORIES} AND {lasting})"


LIFECYCLE_LEVELS = (
    Level(
        "lapsed",
        f"no activity event ({ACTIVITY_WORDS}) for more than {LAPSED_QUIET_DAYS} days"
        " (counted from the sign-up for a customer without one)",
        _lapsed,
    ),
    Level("prospect", "signed up or browsing, never bought", "coalesce(agg.purchases_total, 0) = 0"),
    Level("new", f"first purchase in the last {NEW_DAYS} days", _new),
    Level(
        "at_risk",
        f"engagement low (`engaged_weighted_60d` under {LOW_ENGAGEMENT:g}, where one engaged event"
        f" a week gives about 8.6) or falling (the 30-day weighted level per day under"
        f" {FALLING_SHARE:.0%} of the 120-day one)",
        _at_risk,
    ),
    Level(
        "loyal",
        f"owns at least {LOYAL_CATEGORIES} ecosystem categories, first purchase at least"
        f" {LOYAL_DAYS} days ago",
        _loyal,
    ),
    Level("active", "every other buyer"),
)

LIFECYCLE = FeatureFamily(
    "lifecycle",
    1,
    "The customer's lifecycle stage, from the snapshot's aggregates. It selects whom a list shows"
    " (the retention list leaves lapsed customers out) and is not an input of the churn model: its"
    " rules are business thresholds that can change without retraining.",
    (
        Feature(
            "lifecycle_stage",
            "str",
            "Lifecycle stage: " + ", ".join(lvl.value for lvl in LIFECYCLE_LEVELS) + " (rules below)",
            case_sql(LIFECYCLE_LEVELS),
            "lifecycle stage {value}",
            levels=LIFECYCLE_LEVELS,
        ),
    ),
    (LAPSED_QUIET_DAYS, NEW_DAYS),
    model_input=False,
)

FAMILIES: tuple[FeatureFamily, ...] = (
    RFM,
    ENGAGEMENT,
    ECOSYSTEM_FAMILY,
    PHONE_AGE,
    SERVICE,
    LOYALTY,
    CHANNEL_MIX,
    CAMPAIGN_RESPONSE,
    PROFILE,
    LIFECYCLE,
)


# -- readers of the declarations ------------------------------------------------------------------


def select_sql(as_of: datetime, dialect: Dialect = DUCKDB) -> str:
    """Every family's typed columns of the snapshot's final SELECT, in declaration order."""
    return ",\n  ".join(fam.select_sql(as_of, dialect) for fam in FAMILIES)


def feature_set_version() -> str:
    """The version of the whole set: its major version and a digest of every declaration.

    The digest covers family names and versions and each feature's name, type and SQL (rendered
    at :data:`DIGEST_AS_OF` in DuckDB's dialect), so any change to a definition gives a new
    version (a model records the version it was trained on).
    """
    h = hashlib.sha256()
    for fam in FAMILIES:
        h.update(f"{fam.name}:{fam.version}\n".encode())
        for f in fam.features:
            h.update(f"{f.name}|{f.dtype}|{f.render(DIGEST_AS_OF, DUCKDB)}\n".encode())
    return f"{FEATURE_SET_MAJOR}.{h.hexdigest()[:8]}"


def all_features() -> dict[str, tuple[FeatureFamily, Feature]]:
    """Every feature by name, with its family."""
    return {f.name: (fam, f) for fam in FAMILIES for f in fam.features}


def categorical_features() -> list[str]:
    """The names of the string-valued features (the model treats them as categories)."""
    return [f.name for fam in FAMILIES for f in fam.features if f.dtype == "str"]


def model_features() -> list[str]:
    """The names of the features the churn model takes as inputs, in declaration order."""
    return [f.name for fam in FAMILIES if fam.model_input for f in fam.features]


def reference_markdown() -> str:
    """The reference table of all features for docs/features.md."""
    lines = [
        "# Feature reference",
        "",
        f"Feature set `{FEATURE_SET_NAME}` version `{feature_set_version()}`: one row per customer,",
        "computed only from events with `ts < as_of`. Generated by `python -m features.families`;",
        "a test keeps this file in step with the declarations in `features/families.py`.",
        "",
        "Conventions for customers without the history a feature needs: counts and sums are 0,",
        "shares and rates are 0.0, categorical columns are `'unknown'`, and the recency and age",
        "features (`days_since_last_purchase`, `days_since_last_event`, `phone_age_days`, `age`) are",
        "null where undefined (LightGBM treats null as its own branch). Categorical columns are",
        "strings; the model casts them. `days_*` and `*_age_days` are fractional days before `as_of`.",
        "",
        "Build snapshots with `crm features build --data DIR --as-of DATE[,DATE...] --out DIR`.",
        "",
    ]
    for fam in FAMILIES:
        lines += [f"## {fam.name} (v{fam.version})", "", fam.description, ""]
        lines += ["| feature | type | meaning |", "|---|---|---|"]
        lines += [f"| `{f.name}` | {f.dtype} | {f.description} |" for f in fam.features]
        lines.append("")
        for f in fam.features:
            if f.levels:
                lines += [f"`{f.name}`: the first rule that holds, in this order:", ""]
                lines += [f"{i}. `{lvl.value}`: {lvl.rule}" for i, lvl in enumerate(f.levels, start=1)]
                lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(reference_markdown())
