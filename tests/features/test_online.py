"""The online snapshot: owned and recent items, values, and loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import UserError
from features.online import build_online_snapshot, load_online_snapshot


def test_online_snapshot_lookups(hand_log: Path, tmp_path: Path):
    online = load_online_snapshot(build_online_snapshot(hand_log, tmp_path / "online"))
    assert online.as_of == "2025-10-16 00:00:00"  # the day after the last event
    assert set(online.owned_items("A")) == {"P1", "P2", "W1", "A1", "S1"}
    assert list(online.recent_items("A")[:2]) == ["S1", "A1"]  # newest first
    assert list(online.owned_items("nobody")) == []
    assert online.knows("A") and not online.knows("nobody")
    assert online.customer_value("A") == pytest.approx(800 + 150 + 40 - 150 + 60)
    assert set(online.items.index) == {"P1", "P2", "W1", "A1", "S1"}
    assert online.popularity["purchases"].is_monotonic_decreasing


def test_missing_online_snapshot_is_one_sentence(tmp_path: Path):
    with pytest.raises(UserError, match=r"is incomplete \(missing snapshot.parquet"):
        load_online_snapshot(tmp_path)


def test_folders_named_with_a_quote(hand_log: Path, tmp_path: Path):
    data = hand_log.rename(tmp_path / "o'brien's data")
    online = load_online_snapshot(build_online_snapshot(data, tmp_path / "it's online"))
    assert online.path.name == "it's online" and list(online.recent_items("A")[:2]) == ["S1", "A1"]
