"""Declared feature families of the customer snapshot (DESIGN.md section 5).

A family has a name, a version, a description, its windows and a typed list of features; each
feature has a description and a ``phrase`` that turns its value into words a marketer
understands (used for churn reasons). The SQL of a family lives next to its declaration as
expressions over three relations the snapshot query provides:

- ``agg``: one pass over the events before ``as_of`` grouped by customer (``FILTER`` clauses);
- ``own``: purchases joined with items (category mix, phone age);
- ``c``: the customers table (profile, loyalty).

The expressions use only functions that DuckDB and Spark SQL share; the few that differ go
through :class:`Dialect`. ``python -m features.families`` prints the reference table of
``docs/features.md``.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

FEATURE_SET_NAME = "customer_snapshot"
FEATURE_SET_MAJOR = 1  # bump on a change of meaning that old models must not silently accept
WINDOWS = (7, 30, 90, 365)
PUSHES_PER_WEEK = 1  # the brand sends one campaign push a week; opens per push assume that rate
TIER_RANK = {"standard": 0, "silver": 1, "gold": 2, "platinum": 3}
ECOSYSTEM = ("phone", "smart_home", "wearable", "tv", "laptop", "accessory")
CHANNELS = ("mall", "app", "offline_store", "social", "partner")


@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings that differ between DuckDB and Spark SQL."""

    name: str

    def ts(self, value: datetime) -> str:
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"

    def epoch_us(self, expr: str) -> str:
        """Microseconds since 1970 as an integer: the same exact arithmetic on both engines."""
        return f"epoch_us({expr})" if self.name == "duckdb" else f"unix_micros({expr})"

    def days_before(self, expr: str, as_of: datetime) -> str:
        """Days (fractional) from ``expr`` to ``as_of``."""
        # integer microseconds, then one double division (a decimal literal would make Spark
        # divide in DECIMAL and round differently)
        return f"(CAST({self.epoch_us(self.ts(as_of))} - {self.epoch_us(expr)} AS DOUBLE) / 86400000000)"


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # "int", "float" or "str"
    description: str
    sql: str  # expression in the final SELECT; may use {as_of}-dependent helpers via the family
    phrase: str = ""  # e.g. "{value:.0f} service tickets in the last 90 days"; "" = no reason text
    window_days: int | None = None
    missing: str = ""  # the words for a null value, e.g. "has never bought" (nullable features only)

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
    name: str
    version: int
    description: str
    features: tuple[Feature, ...]
    windows: tuple[int, ...] = ()


EVENT_CODES = {
    name: code
    for code, name in enumerate(
        ("view", "add_to_cart", "purchase", "return", "app_open", "community_post", "service_ticket",
         "coupon_redeem", "push_open")
    )
}  # fmt: skip
ENGAGED = ("app_open", "view", "community_post", "push_open", "add_to_cart")
DECAY_DAYS = 120  # the longest time constant of the weighted counts


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


def _window_aggregates() -> list[str]:
    """The one-pass aggregates over coded events (see :func:`coded_events_sql`)."""
    e = EVENT_CODES
    win = {w: i for i, w in enumerate(WINDOWS)}  # ts >= as_of - w days  <=>  wb <= win[w]
    exprs = []
    for w, i in win.items():
        exprs += [
            f"count(*) FILTER (WHERE et = {e['purchase']} AND wb <= {i}) AS purchases_{w}d",
            # restricted to purchases and returns (the only rows with a signed amount), so the
            # aggregate touches a tenth of the rows
            f"sum(signed_amount) FILTER (WHERE et IN ({e['purchase']}, {e['return']}) AND wb <= {i})"
            f" AS net_revenue_{w}d",
        ]
    engaged = "et IN (" + ", ".join(str(e[k]) for k in ENGAGED) + ")"

    def count(event: str, window: int) -> str:
        return f"count(*) FILTER (WHERE et = {e[event]} AND wb <= {win[window]})"

    exprs += [
        f"count(*) FILTER (WHERE et = {e['purchase']}) AS purchases_total",
        f"max(ts) FILTER (WHERE et = {e['purchase']}) AS last_purchase_ts",
        f"min(ts) FILTER (WHERE et = {e['purchase']}) AS first_purchase_ts",
        "max(ts) AS last_event_ts",
        "min(ts) AS first_event_ts",
        f"{count('app_open', 30)} AS app_opens_30d",
        f"{count('app_open', 90)} AS app_opens_90d",
        f"{count('view', 30)} AS views_30d",
        f"{count('view', 90)} AS views_90d",
        f"{count('add_to_cart', 90)} AS carts_90d",
        f"{count('community_post', 90)} AS community_posts_90d",
        f"count(*) FILTER (WHERE {engaged} AND wb <= {win[30]}) AS engaged_30d",
        f"count(*) FILTER (WHERE {engaged} AND wb = {win[90]}) AS engaged_prev_60d",
        f"{count('service_ticket', 90)} AS service_tickets_90d",
        f"{count('service_ticket', 365)} AS service_tickets_365d",
        f"{count('return', 365)} AS returns_365d",
        f"{count('coupon_redeem', 365)} AS coupons_365d",
        f"{count('push_open', 90)} AS push_opens_90d",
    ]
    # exponentially weighted counts of engaged events: an event ``a`` days old counts
    # exp(-a / tau), the level of activity now, less noisy than one window and without its cliff
    # edge. One exp per row: the 60- and 30-day weights are powers of the 120-day one.
    exprs += [
        f"sum({weight}) FILTER (WHERE {engaged}) AS engaged_weighted_{tau}d"
        for tau, weight in ((120, "decay"), (60, "decay * decay"), (30, "(decay * decay) * (decay * decay)"))
    ]
    exprs += [
        f"count(*) FILTER (WHERE ch = {i} AND wb <= {win[365]}) AS channel_{c}_365d"
        for i, c in enumerate(CHANNELS)
    ]
    return exprs


CHANNEL_EVENTS_365D = "(" + " + ".join(f"coalesce(agg.channel_{c}_365d, 0)" for c in CHANNELS) + ")"


def _share(num: str, den: str) -> str:
    return f"CASE WHEN {den} > 0 THEN {num} / CAST({den} AS DOUBLE) ELSE 0.0 END"


def families(as_of: datetime, d: Dialect = DUCKDB) -> tuple[FeatureFamily, ...]:
    """The feature families with their SQL for one as-of date and dialect."""
    days = d.days_before
    rfm = FeatureFamily(
        "rfm",
        1,
        "Recency, frequency and monetary value of purchases over 7/30/90/365 days.",
        tuple(
            f
            for w in WINDOWS
            for f in (
                Feature(
                    f"purchases_{w}d",
                    "int",
                    f"Purchases in the last {w} days",
                    f"coalesce(agg.purchases_{w}d, 0)",
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
        )
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
                days("agg.last_purchase_ts", as_of),
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
                days("agg.first_purchase_ts", as_of),
                "first purchase {value:.0f} days ago",
                missing="has never bought",
            ),
            Feature(
                "purchase_span_days",
                "float",
                "Days between the first and the last purchase (null: never bought)",
                f"(CAST({d.epoch_us('agg.last_purchase_ts')} - {d.epoch_us('agg.first_purchase_ts')}"
                " AS DOUBLE) / 86400000000)",
                "bought over {value:.0f} days",
                missing="has never bought",
            ),
            Feature(
                "recency_over_purchase_gap",
                "float",
                "Days since the last purchase over the mean gap between purchases (null: under 2 purchases)",
                f"CASE WHEN agg.purchases_total > 1 THEN {days('agg.last_purchase_ts', as_of)}"
                f" / ((CAST({d.epoch_us('agg.last_purchase_ts')} - {d.epoch_us('agg.first_purchase_ts')}"
                " AS DOUBLE) / 86400000000) / (agg.purchases_total - 1) + 1) END",
                "overdue: {value:.1f} times the usual gap since the last purchase",
                missing="fewer than two purchases",
            ),
        ),
        WINDOWS,
    )
    weighted_engagement = tuple(
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
    engagement = FeatureFamily(
        "engagement",
        2,  # v2: exponentially weighted levels of activity
        "App opens, views, carts and community posts, the trend of the last 30 days against the"
        " 60 before, and exponentially weighted levels of activity.",
        weighted_engagement
        + (
            Feature(
                "app_opens_30d",
                "int",
                "App opens in the last 30 days",
                "coalesce(agg.app_opens_30d, 0)",
                "{value:.0f} app opens in the last 30 days",
                30,
            ),  # fmt: skip
            Feature(
                "app_opens_90d",
                "int",
                "App opens in the last 90 days",
                "coalesce(agg.app_opens_90d, 0)",
                "{value:.0f} app opens in the last 90 days",
                90,
            ),  # fmt: skip
            Feature(
                "views_30d",
                "int",
                "Product views in the last 30 days",
                "coalesce(agg.views_30d, 0)",
                "{value:.0f} product views in the last 30 days",
                30,
            ),  # fmt: skip
            Feature(
                "views_90d",
                "int",
                "Product views in the last 90 days",
                "coalesce(agg.views_90d, 0)",
                "{value:.0f} product views in the last 90 days",
                90,
            ),  # fmt: skip
            Feature(
                "carts_90d",
                "int",
                "Add-to-carts in the last 90 days",
                "coalesce(agg.carts_90d, 0)",
                "{value:.0f} add-to-carts in the last 90 days",
                90,
            ),  # fmt: skip
            Feature(
                "community_posts_90d",
                "int",
                "Community posts in the last 90 days",
                "coalesce(agg.community_posts_90d, 0)",
                "{value:.0f} community posts in the last 90 days",
                90,
            ),  # fmt: skip
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
                days("agg.last_event_ts", as_of),
                "no activity for {value:.0f} days",
                missing="no activity yet",
            ),
        ),
        (30, 60, 90, 120),
    )
    own_cols = tuple(
        Feature(
            f"owns_{cat}",
            "int",
            f"Has bought a {cat.replace('_', ' ')} product",
            f"coalesce(own.owns_{cat}, 0)",
            f"owns a {cat.replace('_', ' ')} device" if cat != "accessory" else "owns accessories",
        )
        for cat in ECOSYSTEM
    )
    ecosystem = FeatureFamily(
        "ecosystem",
        2,  # v2: depth counts the brand's ecosystem categories only (v1 counted any category)
        "Category mix of purchases and ecosystem depth (distinct ecosystem categories owned).",
        (
            Feature(
                "ecosystem_depth",
                "int",
                "Distinct ecosystem categories bought ("
                + ", ".join(c.replace("_", " ") for c in ECOSYSTEM)
                + ")",
                "(" + " + ".join(f"coalesce(own.owns_{cat}, 0)" for cat in ECOSYSTEM) + ")",
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
        + own_cols,
    )
    phone = FeatureFamily(
        "phone_age",
        1,
        "Age of the customer's phone: days since the last phone purchase.",
        (
            Feature(
                "phone_age_days",
                "float",
                "Days since the last phone purchase (null: no phone bought)",
                days("own.last_phone_ts", as_of),
                "phone is {months:.0f} months old",
                missing="has no phone from us",
            ),
        ),
    )
    service = FeatureFamily(
        "service",
        1,
        "After-sales service: tickets and returns.",
        (
            Feature(
                "service_tickets_90d",
                "int",
                "Service tickets in the last 90 days",
                "coalesce(agg.service_tickets_90d, 0)",
                "{value:.0f} service tickets in the last 90 days",
                90,
            ),  # fmt: skip
            Feature(
                "service_tickets_365d",
                "int",
                "Service tickets in the last 365 days",
                "coalesce(agg.service_tickets_365d, 0)",
                "{value:.0f} service tickets in the last year",
                365,
            ),  # fmt: skip
            Feature(
                "returns_365d",
                "int",
                "Returns in the last 365 days",
                "coalesce(agg.returns_365d, 0)",
                "{value:.0f} returns in the last year",
                365,
            ),  # fmt: skip
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
    loyalty = FeatureFamily(
        "loyalty",
        1,
        "Member tier, points and coupons.",
        (
            Feature(
                "member_tier", "str", "Member tier", "coalesce(c.member_tier, 'unknown')", "{value} member"
            ),  # fmt: skip
            Feature(
                "tier_rank",
                "int",
                "Member tier as a rank (standard 0 .. platinum 3)",
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
            ),  # fmt: skip
            Feature(
                "coupons_365d",
                "int",
                "Coupons redeemed in the last 365 days",
                "coalesce(agg.coupons_365d, 0)",
                "{value:.0f} coupons redeemed in the last year",
                365,
            ),  # fmt: skip
        ),
        (365,),
    )
    channel = FeatureFamily(
        "channel_mix",
        1,
        "Share of the last year's events per channel.",
        tuple(
            Feature(
                f"channel_share_{ch}",
                "float",
                f"Share of the last 365 days' events in the {ch.replace('_', ' ')} channel",
                _share(f"coalesce(agg.channel_{ch}_365d, 0)", CHANNEL_EVENTS_365D),
                f"{{value:.0%}} of activity in the {ch.replace('_', ' ')} channel",
                365,
            )
            for ch in CHANNELS
        ),
        (365,),
    )
    campaign = FeatureFamily(
        "campaign_response",
        1,
        f"Push opens, and opens per push assuming {PUSHES_PER_WEEK} push a week.",
        (
            Feature(
                "push_opens_90d",
                "int",
                "Push notifications opened in the last 90 days",
                "coalesce(agg.push_opens_90d, 0)",
                "opened {value:.0f} pushes in the last 90 days",
                90,
            ),  # fmt: skip
            Feature(
                "push_open_rate_90d",
                "float",
                "Push opens per push sent in the last 90 days",
                f"CAST(coalesce(agg.push_opens_90d, 0) AS DOUBLE)"
                f" / ({PUSHES_PER_WEEK} * CAST(90 AS DOUBLE) / 7)",
                "opens {value:.0%} of pushes",
                90,
            ),
        ),
        (90,),
    )
    profile = FeatureFamily(
        "profile",
        1,
        "Age, age band, gender, region and tenure.",
        (
            Feature(
                "age",
                "float",
                "Age in years at the as-of date",
                f"CAST({as_of.year} - c.birth_year AS DOUBLE)",
                "{value:.0f} years old",
                missing="age unknown",
            ),
            Feature(
                "age_band",
                "str",
                "Age band (18-25, 26-35, 36-45, 46-55, 56+)",
                f"CASE WHEN c.birth_year IS NULL THEN 'unknown' "
                f"WHEN {as_of.year} - c.birth_year <= 25 THEN '18-25' "
                f"WHEN {as_of.year} - c.birth_year <= 35 THEN '26-35' "
                f"WHEN {as_of.year} - c.birth_year <= 45 THEN '36-45' "
                f"WHEN {as_of.year} - c.birth_year <= 55 THEN '46-55' ELSE '56+' END",
                "aged {value}",
            ),
            Feature("gender", "str", "Gender", "coalesce(c.gender, 'unknown')", "gender {value}"),
            Feature(
                "region", "str", "Region", "coalesce(c.region, 'unknown')", "lives in the {value} region"
            ),  # fmt: skip
            Feature(
                "tenure_days",
                "float",
                "Days since sign-up (or the first event when the sign-up date is unknown)",
                f"greatest({days('coalesce(c.signup_ts, agg.first_event_ts)', as_of)}, 0.0)",
                "customer for {years:.1f} years",
            ),
        ),
    )
    return (rfm, engagement, ecosystem, phone, service, loyalty, channel, campaign, profile)


def feature_set_version() -> str:
    """The version of the whole set: its major version and a digest of every declaration.

    The digest covers family names and versions and each feature's name, type and SQL, so any
    change to a definition gives a new version (a model records the version it was trained on).
    """
    h = hashlib.sha256()
    for fam in families(datetime(2000, 1, 1)):
        h.update(f"{fam.name}:{fam.version}\n".encode())
        for f in fam.features:
            h.update(f"{f.name}|{f.dtype}|{f.sql}\n".encode())
    return f"{FEATURE_SET_MAJOR}.{h.hexdigest()[:8]}"


def all_features(as_of: datetime | None = None) -> dict[str, tuple[FeatureFamily, Feature]]:
    """Every feature by name, with its family."""
    fams = families(as_of or datetime(2000, 1, 1))
    return {f.name: (fam, f) for fam in fams for f in fam.features}


def categorical_features() -> list[str]:
    return [name for name, (_, f) in all_features().items() if f.dtype == "str"]


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
    for fam in families(datetime(2000, 1, 1)):
        lines += [f"## {fam.name} (v{fam.version})", "", fam.description, ""]
        lines += ["| feature | type | meaning |", "|---|---|---|"]
        lines += [f"| `{f.name}` | {f.dtype} | {f.description} |" for f in fam.features]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(reference_markdown())
