"""Actions that fit the reason: no action contradicts its reason, and misread reasons are left out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.actions import (
    ACTION_NAMES,
    ACTIONS,
    DEFAULT_ACTION,
    PHONE_UPGRADE_AGE_DAYS,
    READINGS,
    When,
    pick_reasons,
    reason_is_shown,
    reason_phrase,
    suggest_action,
)
from features.families import all_features
from features.vocab import MEMBER_TIERS

# values over each feature's range: counts, shares, ratios, days (to three years), nulls
GRID = sorted(
    set(np.round(np.linspace(0, 1, 21), 3)) | set(range(0, 12)) | set(np.linspace(0, 3 * 365, 111).round(1))
) + [-5.0, -0.01, None, math.nan]


def _rules_of(feature: str) -> list:
    return [a for a in ACTIONS if feature in a.answers]


def test_every_declared_feature_exists_in_the_families():
    declared = set(all_features())
    for action in ACTIONS:
        assert set(action.answers) <= declared, action
    for reading in READINGS:
        assert set(reading.features) <= declared, reading


@pytest.mark.parametrize("feature", sorted({f for a in ACTIONS for f in a.answers}))
def test_no_action_contradicts_its_reason(feature):
    for value in GRID:
        action = suggest_action([(feature, value)])
        if action == DEFAULT_ACTION:
            assert not any(rule.when.holds(value) for rule in _rules_of(feature)), (feature, value)
        else:
            # the action chosen is one whose condition the value meets
            assert any(r.name == action and r.when.holds(value) for r in _rules_of(feature)), (feature, value)


def test_the_conditions_of_the_issue_hold_over_the_grid():
    for value in GRID:
        if suggest_action([("phone_age_days", value)]) == "phone upgrade offer":
            assert value >= PHONE_UPGRADE_AGE_DAYS  # never for a phone younger than 18 months
        if suggest_action([("service_tickets_90d", value)]) == "service follow-up":
            assert value >= 2  # only tickets above usual
        if suggest_action([("ecosystem_depth", value)]) == "ecosystem bundle":
            assert value <= 2  # only for a customer who owns few categories
    assert suggest_action([("phone_age_days", 60.0)]) == DEFAULT_ACTION  # a two-month-old phone
    assert suggest_action([("phone_age_days", 600.0)]) == "phone upgrade offer"
    assert suggest_action([("service_tickets_90d", 1)]) == DEFAULT_ACTION
    assert suggest_action([("service_tickets_90d", 3)]) == "service follow-up"
    assert suggest_action([("phone_age_days", None)]) == DEFAULT_ACTION  # no phone: nothing to upgrade


def test_the_first_reason_that_matches_decides():
    reasons = [("phone_age_days", 40.0), ("service_tickets_90d", 4), ("ecosystem_depth", 1)]
    assert suggest_action(reasons) == "service follow-up"
    assert suggest_action(reasons[2:] + reasons[:2]) == "ecosystem bundle"
    assert suggest_action([("days_since_last_event", 200.0)]) == "win-back offer"
    assert suggest_action([("days_since_last_event", 30.0)]) == "re-engagement push"


def test_the_default_applies_when_nothing_matches():
    assert suggest_action([]) == DEFAULT_ACTION
    assert suggest_action([("age", 30.0), ("region", "north"), ("net_revenue_30d", 900.0)]) == DEFAULT_ACTION
    assert suggest_action([("service_tickets_90d", 0), ("ecosystem_depth", 5)]) == DEFAULT_ACTION
    assert DEFAULT_ACTION in ACTION_NAMES and {a.name for a in ACTIONS} <= set(ACTION_NAMES)


def test_recent_spend_is_not_shown_as_a_churn_driver():
    assert not reason_is_shown("net_revenue_30d", 1200.0, 0.4)  # a recent purchase: not a reason
    assert reason_is_shown("net_revenue_30d", 0.0, 0.4)
    assert reason_phrase("net_revenue_30d", 0.0) == "no net spend in the last 30 days"
    assert not reason_is_shown("purchases_90d", 2, 0.3)
    assert not reason_is_shown("phone_age_days", 60.0, 0.5)  # a young phone pushing the risk up
    assert reason_is_shown("phone_age_days", 700.0, 0.5)
    assert not reason_is_shown("days_since_last_purchase", 5.0, 0.2)


def test_only_reasons_that_push_the_risk_up_are_shown():
    assert reason_is_shown("service_tickets_90d", 3, 0.2)
    assert not reason_is_shown("service_tickets_90d", 3, 0.0)
    assert not reason_is_shown("service_tickets_90d", 3, -0.2)
    assert not reason_is_shown("service_tickets_90d", 0, 0.2)
    assert reason_is_shown("region", "north", 0.1)  # no declared reading: shown as it is


def test_an_action_is_only_suggested_for_a_value_that_reads_as_a_risk():
    # a reason the list shows never gets an action its value contradicts, and every value an
    # action answers is one the list shows
    readings = {f: r for r in READINGS for f in r.features}
    for action in ACTIONS:
        for feature in action.answers:
            for value in GRID:
                if action.when.holds(value):
                    assert readings[feature].risk.holds(value), (action.name, feature, value)


def test_words_for_values_the_feature_phrase_would_misread():
    assert reason_phrase("owns_wearable", 0) == "has no wearable from us"
    assert reason_phrase("owns_smart_home", 0) == "has no smart home from us"
    assert reason_phrase("purchases_total", 0) == "has never bought"
    assert reason_phrase("service_tickets_90d", 3) is None  # the feature's own phrase is right


def test_conditions_on_words_and_nulls():
    low = When(one_of=MEMBER_TIERS[:1])
    assert low.holds("standard") and not low.holds("gold") and not low.holds(None)
    assert not When(at_least=1).holds("standard")
    assert When(at_least=14, missing=True).holds(None) and When(at_least=14, missing=True).holds(math.nan)
    assert When(at_least=2, at_most=5).describe() == "2 to 5"
    assert When(at_least=90, missing=True).describe() == ">= 90 or missing"
    assert reason_is_shown("member_tier", "standard", 0.1) and not reason_is_shown("member_tier", "gold", 0.1)


def test_pick_reasons_skips_misread_ones_and_keeps_the_order():
    candidates = [
        ("net_revenue_30d", 800.0, 0.9),  # recent spend: left out
        ("service_tickets_90d", 3, 0.5),
        ("phone_age_days", 50.0, 0.4),  # a young phone: left out
        ("engagement_trend", 0.5, 0.3),
        ("ecosystem_depth", 1, 0.2),
        ("days_since_last_event", 40.0, 0.1),
        ("age", 30.0, -0.1),
    ]
    picked = pick_reasons(candidates, top=3)
    assert [f for f, _, _ in picked] == ["service_tickets_90d", "engagement_trend", "ecosystem_depth"]
    assert pick_reasons(candidates[-1:]) == []
    assert suggest_action([(f, v) for f, v, _ in picked]) == "service follow-up"


def test_a_long_history_is_not_shown_as_a_churn_driver():
    assert reason_is_shown("tenure_days", 60.0, 0.2)
    assert not reason_is_shown("tenure_days", 900.0, 0.2)
