"""Churn reasons a marketer reads right, and the action that fits each, declared as data.

A churn reason is a feature whose contribution pushes a customer's risk up, with the customer's
value of it. Two declarations beside the feature families (:mod:`features.families`) decide what
the churn list shows:

- :data:`READINGS`: the values of a feature that read as a risk. A reason outside them is left out
  (:func:`reason_is_shown`): high recent spend or a two-month-old phone pushing the risk up is the
  model saying "no purchase is due soon", which a marketer would misread as a driver of leaving.
  A reading may also give the words for its values (``phrase``), where the feature's own phrase
  would mislead (``owns_wearable = 0`` is "has no wearable device from us").
- :data:`ACTIONS`: each action with the reason features it answers and a condition on the
  reason's value (no phone upgrade offer for a phone younger than 18 months, a service follow-up
  only for tickets above usual, an ecosystem bundle only for a customer who owns few categories).
  :func:`suggest_action` takes the first reason, in order, that some action answers;
  :data:`DEFAULT_ACTION` when none does.

The thresholds are stated in the feature's own unit. "Above usual" for service tickets is set
above the 95th percentile of customers with a purchase on the simulated presets: two tickets in
90 days, three in a year (most customers have none).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from features.vocab import ECOSYSTEM, MEMBER_TIERS

Value = float | int | str | None

DAYS_PER_MONTH = 30.44  # the month of the phrases' ``{months}``
PHONE_UPGRADE_AGE_DAYS = 18 * DAYS_PER_MONTH  # a phone lasts two to three years


@dataclass(frozen=True)
class When:
    """A condition on a value: ``at_least <= value <= at_most`` for numbers (an unset bound is open),
    membership of ``one_of`` for strings, and ``missing`` for a null (None or NaN)."""

    at_least: float | None = None
    at_most: float | None = None
    one_of: tuple[str, ...] = ()
    missing: bool = False

    def holds(self, value: Value) -> bool:
        """Whether ``value`` meets the condition."""
        if _is_missing(value):
            return self.missing
        if isinstance(value, str):
            return value in self.one_of
        if self.one_of or (self.at_least is None and self.at_most is None):
            return False  # a condition on words, or on nulls only
        low = self.at_least if self.at_least is not None else -math.inf
        high = self.at_most if self.at_most is not None else math.inf
        return low <= float(value) <= high

    def describe(self) -> str:
        """The condition in words (for the documentation)."""
        if self.one_of:
            words = "one of " + ", ".join(self.one_of)
        elif self.at_least is not None and self.at_most is not None:
            words = f"{self.at_least:g} to {self.at_most:g}"
        elif self.at_least is not None:
            words = f">= {self.at_least:g}"
        elif self.at_most is not None:
            words = f"<= {self.at_most:g}"
        else:
            return "missing" if self.missing else "never"
        return words + (" or missing" if self.missing else "")


def _is_missing(value: Value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Reading:
    """The values of ``features`` that read as a churn risk; ``phrase`` (optional) words them,
    with ``{value}``, ``{months}`` and ``{feature}`` (the category of an ``owns_*`` feature)."""

    features: tuple[str, ...]
    risk: When
    phrase: str = ""


@dataclass(frozen=True)
class Action:
    """An action, the reason features it answers and the condition on the reason's value."""

    name: str
    answers: tuple[str, ...]
    when: When
    why: str


def _windows(prefix: str, windows: tuple[int, ...] = (7, 30, 90, 365)) -> tuple[str, ...]:
    return tuple(f"{prefix}_{w}d" for w in windows)


OWNS = tuple(f"owns_{category}" for category in ECOSYSTEM)
NO_SPEND = When(at_most=0)
LOW_TIERS = MEMBER_TIERS[:1]

READINGS: tuple[Reading, ...] = (
    # spending and buying are signs of staying: only their absence reads as a risk
    Reading(_windows("net_revenue") + ("customer_value",), NO_SPEND, "no net spend in the last {window}"),
    Reading(_windows("purchases"), NO_SPEND, "no purchases in the last {window}"),
    Reading(("purchases_total",), NO_SPEND, "has never bought"),
    # a recent purchase means the next one is not due yet, not that the customer is leaving
    Reading(("days_since_last_purchase",), When(at_least=90, missing=True)),
    Reading(("recency_over_purchase_gap",), When(at_least=1.0)),
    Reading(("days_since_last_event",), When(at_least=14, missing=True)),
    Reading(("phone_age_days",), When(at_least=365, missing=True)),
    # engagement reads as a risk only when it is low or falling
    Reading(("engagement_trend",), When(at_most=0.8)),
    Reading(
        ("engaged_weighted_30d", "engaged_weighted_60d", "engaged_weighted_120d"),
        When(at_most=1.0),
        "little recent activity in the app and shop",
    ),
    Reading(
        ("app_opens_30d", "app_opens_90d", "views_30d", "views_90d", "carts_90d", "community_posts_90d"),
        When(at_most=0),
    ),
    Reading(
        ("push_opens_90d", "push_open_rate_90d"), When(at_most=0), "opened no pushes in the last 90 days"
    ),
    # service problems read as a risk from the first ticket (the action waits for more, below)
    Reading(("service_tickets_90d", "service_tickets_365d", "returns_365d"), When(at_least=1)),
    Reading(("return_rate_365d",), When(at_least=0.1)),
    # a narrow relationship with the brand
    Reading(("ecosystem_depth",), When(at_most=2)),
    Reading(("phone_share",), When(at_least=0.5)),
    Reading(OWNS, When(at_most=0), "has no {feature} from us"),
    Reading(("tier_rank",), When(at_most=0)),
    # a short history reads as a risk (a new customer); a long one does not
    Reading(("tenure_days", "days_since_first_purchase", "purchase_span_days"), When(at_most=180)),
    Reading(("member_tier",), When(one_of=LOW_TIERS)),
)

ACTIONS: tuple[Action, ...] = (
    Action(
        "service follow-up",
        ("service_tickets_90d",),
        When(at_least=2),
        "tickets above usual: two or more in 90 days",
    ),
    Action(
        "service follow-up",
        ("service_tickets_365d",),
        When(at_least=3),
        "tickets above usual: three or more in a year",
    ),
    Action("service follow-up", ("returns_365d",), When(at_least=2), "two or more returns in a year"),
    Action("service follow-up", ("return_rate_365d",), When(at_least=0.25), "a quarter or more returned"),
    Action(
        "phone upgrade offer",
        ("phone_age_days",),
        When(at_least=PHONE_UPGRADE_AGE_DAYS),
        "a phone 18 months old or older",
    ),
    Action("ecosystem bundle", ("ecosystem_depth",), When(at_most=2), "owns at most two product categories"),
    Action("ecosystem bundle", ("phone_share",), When(at_least=0.75), "three in four purchases were phones"),
    Action("ecosystem bundle", OWNS, When(at_most=0), "does not own the category"),
    Action(
        "win-back offer",
        ("days_since_last_purchase",),
        When(at_least=365),
        "no purchase for a year",
    ),
    Action("win-back offer", ("days_since_last_event",), When(at_least=90), "quiet for three months"),
    Action(
        "re-engagement push",
        ("days_since_last_event",),
        When(at_least=14, at_most=90),
        "quiet for two weeks to three months",
    ),
    Action("re-engagement push", ("engagement_trend",), When(at_most=0.8), "engagement falling"),
    Action(
        "re-engagement push",
        ("engaged_weighted_30d", "engaged_weighted_60d", "engaged_weighted_120d"),
        When(at_most=1.0),
        "little recent activity",
    ),
    Action("re-engagement push", ("app_opens_30d", "app_opens_90d"), When(at_most=0), "no app opens"),
    Action(
        "re-engagement push", ("push_opens_90d", "push_open_rate_90d"), When(at_most=0), "opens no pushes"
    ),
)
DEFAULT_ACTION = "personal check-in"  # a neutral contact: contradicts no reason
ACTION_NAMES: tuple[str, ...] = tuple(dict.fromkeys([a.name for a in ACTIONS] + [DEFAULT_ACTION]))


def _readings() -> dict[str, Reading]:
    return {feature: reading for reading in READINGS for feature in reading.features}


READING_BY_FEATURE = _readings()


def suggest_action(reasons: list[tuple[str, Value]]) -> str:
    """The action of the first reason (feature name, value), in order, that an action answers and
    whose value meets that action's condition; :data:`DEFAULT_ACTION` when none does."""
    for feature, value in reasons:
        for action in ACTIONS:
            if feature in action.answers and action.when.holds(value):
                return action.name
    return DEFAULT_ACTION


def reason_is_shown(feature: str, value: Value, contribution: float) -> bool:
    """Whether a reason is shown: it pushes the risk up and its value reads as a risk (a feature
    without a declared reading is shown whatever its value)."""
    if not contribution > 0:
        return False
    reading = READING_BY_FEATURE.get(feature)
    return reading is None or reading.risk.holds(value)


def pick_reasons(
    candidates: Iterable[tuple[str, Value, float]], top: int = 3
) -> list[tuple[str, Value, float]]:
    """The first ``top`` shown reasons among ``(feature, value, contribution)`` candidates given
    largest contribution first (see :func:`reason_is_shown`)."""
    shown = []
    for feature, value, contribution in candidates:
        if not contribution > 0 or len(shown) == top:
            break
        if reason_is_shown(feature, value, contribution):
            shown.append((feature, value, contribution))
    return shown


def reason_phrase(feature: str, value: Value) -> str | None:
    """The reading's own words for a shown reason, or None to use the feature's phrase."""
    reading = READING_BY_FEATURE.get(feature)
    if reading is None or not reading.phrase or _is_missing(value):
        return None
    words = feature.removeprefix("owns_").replace("_", " ")
    window = feature.rsplit("_", 1)[-1]
    window = f"{window[:-1]} days" if window.endswith("d") and window[:-1].isdigit() else "year"
    months = float(value) / DAYS_PER_MONTH if isinstance(value, int | float) else value
    return reading.phrase.format(value=value, months=months, feature=words, window=window)
