"""Churn labels on hand-built cases, and training sets stacked over as-of dates."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.contract import open_validated
from features.errors import UserError
from features.labels import churn_labels, churn_training_set
from tests.features.handlog import AS_OF


def labels(hand_log: Path, **kw) -> dict[str, int]:
    frame = churn_labels(open_validated(hand_log), AS_OF, **kw)
    return dict(zip(frame["customer_id"], frame["churned"], strict=True))


def test_purchase_at_as_of_counts_and_at_as_of_plus_horizon_does_not(hand_log: Path):
    got = labels(hand_log, horizon_days=90, lookback_days=365, population="active")
    # A buys exactly at as-of (inside [as_of, as_of + 90d)); B's purchase is exactly at the end (outside)
    # and B was active 16 months ago, so not in the active population; C buys a month later.
    assert got == {"A": 0, "C": 0}


def test_population_all_includes_lapsed_customers(hand_log: Path):
    got = labels(hand_log, horizon_days=90, population="all")
    assert got == {"A": 0, "B": 1, "C": 0}
    # a longer horizon reaches B's purchase
    assert labels(hand_log, horizon_days=91, population="all")["B"] == 0


def test_lookback_defines_the_active_population(hand_log: Path):
    assert set(labels(hand_log, lookback_days=500)) == {"A", "B", "C"}
    assert set(labels(hand_log, lookback_days=25)) == {"A", "C"}


def test_horizon_past_the_end_of_the_data_is_a_clear_error(hand_log: Path):
    with pytest.raises(UserError, match=r"ends on 2025-10-17, after the last event \(2025-10-15\)"):
        labels(hand_log, horizon_days=108)
    assert labels(hand_log, horizon_days=107)  # [as_of, 2025-10-16) covers the last day of data


def test_bad_parameters_are_named(hand_log: Path):
    with pytest.raises(UserError, match="population"):
        labels(hand_log, population="everyone")


def test_training_set_stacks_as_of_dates_with_snapshot_and_label(tiny_data: Path):
    con = open_validated(tiny_data)
    frame = churn_training_set(con, ["2025-06-01", "2025-03-01"], horizon_days=60)
    assert list(frame["as_of"].dt.strftime("%Y-%m-%d").unique()) == ["2025-03-01", "2025-06-01"]
    assert not frame.duplicated(["customer_id", "as_of"]).any()
    assert set(frame["churned"].unique()) == {0, 1}
    assert 0.2 < frame["churned"].mean() < 0.9
    # a customer churned at as-of t has no purchase in [t, t + 60d): check against the events
    one = frame[frame["churned"] == 1].iloc[0]
    bought = con.execute(
        "SELECT count(*) FROM events WHERE customer_id = ? AND event_type = 'purchase'"
        " AND ts >= ? AND ts < ? + INTERVAL 60 DAY",
        [one["customer_id"], one["as_of"], one["as_of"]],
    ).fetchone()[0]
    assert bought == 0


def test_activity_label_counts_activity_events_and_not_app_opens(hand_log: Path):
    # engaged in the 30 days before as-of: A only (C only opened the app, B was seen in 2024)
    assert labels(hand_log, label="activity") == {"A": 0}
    # over 500 days B joins: a view in March 2024; its purchase at as-of + 90 days is outside
    assert labels(hand_log, label="activity", engaged_days=500) == {"A": 0, "B": 1}
    # every known customer: C buys a month after as-of
    assert labels(hand_log, label="activity", population="all") == {"A": 0, "B": 1, "C": 0}


def test_activity_label_ignores_app_opens_in_the_horizon(tmp_path: Path):
    from tests.features.handlog import write_log

    events = [
        ("opens", "2025-06-20 10:00", "view", "P1", None, None, "app"),
        ("opens", "2025-07-20 10:00", "app_open", None, None, None, "app"),
        ("views", "2025-06-20 10:00", "view", "P1", None, None, "app"),
        ("views", "2025-07-20 10:00", "view", "P1", None, None, "app"),
        ("end", "2025-12-31 10:00", "app_open", None, None, None, "app"),
    ]
    frame = churn_labels(open_validated(write_log(tmp_path / "log", events)), AS_OF, label="activity")
    assert dict(zip(frame["customer_id"], frame["churned"], strict=True)) == {"opens": 1, "views": 0}


def test_the_default_label_follows_the_event_types(hand_log: Path, tmp_path: Path):
    from features.labels import default_label
    from tests.features.handlog import write_log

    assert default_label(open_validated(hand_log)) == "activity"
    purchases = [
        ("A", "2025-01-01", "purchase", None, 1, 10.0, None),
        ("A", "2025-02-01", "return", None, 1, 10.0, None),
    ]
    assert default_label(open_validated(write_log(tmp_path / "cdnow", purchases))) == "purchase"


@pytest.mark.parametrize("label", ["activity", "purchase"])
def test_the_label_reads_only_its_window_and_the_population_only_the_past(
    tiny_data: Path, tmp_path: Path, label: str
):
    import shutil

    import numpy as np
    import pandas as pd

    as_of, horizon = pd.Timestamp("2025-06-01"), 60
    reference = churn_labels(open_validated(tiny_data), as_of, horizon, label=label)
    changed = tmp_path / "changed"
    shutil.copytree(tiny_data, changed, ignore=shutil.ignore_patterns("validated", "rejects"))
    events = pd.read_parquet(changed / "events")
    # scramble the type of every event from the end of the label window on and before the
    # population's window (the timestamps stay, so the data still reaches past the window)
    end, start = as_of + pd.Timedelta(days=horizon), as_of - pd.Timedelta(days=365)
    outside = (events["ts"] >= end) | (events["ts"] < start)
    rng = np.random.default_rng(0)
    events.loc[outside, "event_type"] = rng.choice(["purchase", "service_ticket", "app_open"], outside.sum())
    shutil.rmtree(changed / "events")
    (changed / "events").mkdir()
    events.to_parquet(changed / "events" / "part-0.parquet", index=False)
    pd.testing.assert_frame_equal(
        churn_labels(open_validated(changed), as_of, horizon, label=label), reference
    )


def test_unknown_label_is_named(hand_log: Path):
    with pytest.raises(UserError, match="Unknown churn label 'silence'"):
        labels(hand_log, label="silence")
