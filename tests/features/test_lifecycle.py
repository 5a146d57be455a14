"""The lifecycle stage: each rule on a hand-built customer, the snapshots, and the truth on tiny."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features import families
from features.contract import open_validated
from features.online import build_online_snapshot, load_online_snapshot
from features.snapshot import build_snapshot
from features.synth import true_customers
from features.vocab import LIFECYCLE_STAGES
from tests.features.handlog import AS_OF, HAND_ITEMS, write_log


def ago(days: float) -> str:
    return f"{AS_OF - pd.Timedelta(days=days):%Y-%m-%d %H:%M}"


def weekly(customer: str, event: str, weeks: int, start_days: float = 3) -> list[tuple]:
    """One ``event`` a week for ``weeks`` weeks, the newest ``start_days`` before as-of."""
    return [(customer, ago(start_days + 7 * w), event, None, None, None, "app") for w in range(weeks)]


def buy(customer: str, days: float, item: str = "P1") -> tuple:
    return (customer, ago(days), "purchase", item, 1, 100.0, "app")


# one customer per stage, each just inside its rule (and "gone": quiet but for app opens)
STAGE_EVENTS = {
    "prospect": [("prospect", ago(5), "view", "P1", None, None, "app")],
    "new": [buy("new", 10), *weekly("new", "app_open", 4)],
    "at_risk": [buy("at_risk", 300), ("at_risk", ago(25), "view", "P1", None, None, "app")],
    "loyal": [
        buy("loyal", 500),
        buy("loyal", 400, "W1"),
        buy("loyal", 300, "S1"),
        *weekly("loyal", "push_open", 20),
    ],
    "active": [buy("active", 300), *weekly("active", "push_open", 20)],
    "lapsed": [buy("lapsed", 300), ("lapsed", ago(61), "view", "P1", None, None, "app")],
    # a customer who left but whose phone still opens the app now and then
    "gone": [
        buy("gone", 300),
        ("gone", ago(100), "view", "P1", None, None, "app"),
        *weekly("gone", "app_open", 2),
    ],
}


@pytest.fixture()
def stages(tmp_path: Path) -> dict[str, str]:
    events = [e for rows in STAGE_EVENTS.values() for e in rows]
    customers = {
        "customer_id": list(STAGE_EVENTS),
        "signup_ts": pd.to_datetime([ago(700)] * len(STAGE_EVENTS)),
    }
    folder = write_log(tmp_path / "stages", events, customers, HAND_ITEMS)
    snapshot = build_snapshot(open_validated(folder), AS_OF)
    return dict(zip(snapshot["customer_id"], snapshot["lifecycle_stage"], strict=True))


def test_each_rule_gives_its_stage(stages: dict[str, str]):
    assert stages == {name: name for name in LIFECYCLE_STAGES} | {"gone": "lapsed"}


def test_the_stage_moves_with_its_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    events = [e for rows in STAGE_EVENTS.values() for e in rows]
    folder = write_log(tmp_path / "stages", events, None, HAND_ITEMS)
    monkeypatch.setattr(families, "LAPSED_QUIET_DAYS", 24)  # the at-risk customer's view is 25 days old
    snapshot = build_snapshot(open_validated(folder), AS_OF).set_index("customer_id")
    assert snapshot.loc["at_risk", "lifecycle_stage"] == "lapsed"


def test_a_prospect_without_any_event_lapses_from_the_sign_up(tmp_path: Path):
    customers = {"customer_id": ["fresh", "old"], "signup_ts": pd.to_datetime([ago(10), ago(100)])}
    folder = write_log(tmp_path / "signups", [buy("x", 5)], customers, HAND_ITEMS)
    snapshot = build_snapshot(open_validated(folder), AS_OF).set_index("customer_id")
    assert snapshot.loc[["fresh", "old"], "lifecycle_stage"].tolist() == ["prospect", "lapsed"]


def test_the_online_snapshot_carries_the_stage(hand_log: Path, tmp_path: Path):
    online = load_online_snapshot(build_online_snapshot(hand_log, tmp_path / "online", as_of=AS_OF))
    assert online.snapshot["lifecycle_stage"].to_dict() == {"A": "loyal", "B": "lapsed", "C": "prospect"}


def test_on_tiny_lapsed_customers_are_mostly_gone_and_at_risk_ones_leave_more(tiny_data: Path):
    as_of = pd.Timestamp("2025-07-01")
    snapshot = build_snapshot(open_validated(tiny_data), as_of)
    truth = snapshot.merge(true_customers(tiny_data)[["customer_id", "churn_ts"]], on="customer_id")
    gone = truth["churn_ts"] < as_of
    leaves = ~gone & (truth["churn_ts"] < as_of + pd.Timedelta(days=90))
    lapsed = truth["lifecycle_stage"] == "lapsed"
    assert gone[lapsed].mean() > 0.4 and lapsed[gone].mean() > 0.8  # precision and recall
    assert gone[lapsed].mean() > 10 * gone[~lapsed].mean()
    rate = leaves[~gone].groupby(truth.loc[~gone, "lifecycle_stage"]).mean()
    assert rate["at_risk"] > 2 * max(rate["active"], rate["loyal"])
