"""An as-of date whose label window runs past the data is refused naming the date the user gave."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.contract import open_validated
from features.errors import UserError
from training.churn import ChurnTrainConfig, build_folds


def test_an_as_of_too_late_for_the_horizon_names_the_users_date(tiny_data: Path):
    cfg = ChurnTrainConfig(data=tiny_data, as_of="2026-06-01", horizon_days=90)
    with pytest.raises(UserError, match=r"^The label window of as-of 2026-06-01 with a horizon of 90 days"):
        build_folds(open_validated(tiny_data), cfg, say=lambda message: None)
