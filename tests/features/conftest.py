"""Fixtures of the feature tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.features.handlog import HAND_CUSTOMERS, HAND_EVENTS, HAND_ITEMS, write_log


@pytest.fixture()
def hand_log(tmp_path: Path) -> Path:
    return write_log(tmp_path / "hand", HAND_EVENTS, HAND_CUSTOMERS, HAND_ITEMS)
