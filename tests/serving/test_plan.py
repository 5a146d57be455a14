"""Retention plans: within budget, positive value saved only, a random control group, a valid
campaigns table, and the ``crm retention-plan`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from serving.plan import audience_size, plan_audience


def scored(n: int, seed: int = 0) -> pd.DataFrame:
    """Customers with a risk, a value and an uplift that grows with both."""
    rng = np.random.default_rng(seed)
    risk = rng.beta(2, 5, n)
    value = rng.lognormal(5, 1, n)
    uplift = risk * rng.uniform(-0.1, 0.4, n)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "uplift": uplift,
            "risk": risk,
            "customer_value": value,
            "expected_value_saved": uplift * value - 10.0,
        }
    )


@pytest.mark.parametrize("cost", [0.5, 10.0, 37.0])
@pytest.mark.parametrize("budget", [0.0, 9.0, 100.0, 5_000.0, 1e9])
@pytest.mark.parametrize("control_share", [0.0, 0.1, 0.5])
def test_a_plan_never_exceeds_its_budget(cost: float, budget: float, control_share: float):
    plan = plan_audience(scored(3_000), cost, budget, control_share)
    treated = (plan["arm"] == "treatment").sum()
    assert treated * cost <= budget + 1e-9
    positive = int((scored(3_000)["expected_value_saved"] > 0).sum())
    # and it spends what it can: one more customer would break the budget, or none is left
    assert (
        len(plan) == positive
        or (treated + 1) * cost > budget
        or len(plan) == audience_size(positive, cost, budget, control_share)
    )
    assert (plan["arm"] == "control").sum() == round(control_share * len(plan))


def test_only_customers_with_a_positive_value_saved_are_taken_best_first():
    frame = scored(2_000)
    plan = plan_audience(frame, 10.0, 2_000.0, 0.1)
    assert (plan["expected_value_saved"] > 0).all()
    assert plan["expected_value_saved"].is_monotonic_decreasing
    left_out = frame[~frame["customer_id"].isin(plan["customer_id"])]
    assert (left_out["expected_value_saved"] <= plan["expected_value_saved"].min()).all()
    assert plan["rank"].tolist() == list(range(1, len(plan) + 1))


def test_the_control_group_is_a_random_draw_of_the_same_audience():
    plan = plan_audience(scored(40_000), 10.0, 60_000.0, 0.1, seed=3)
    control, treated = plan[plan["arm"] == "control"], plan[plan["arm"] == "treatment"]
    assert len(control) > 300
    for column in ("risk", "customer_value", "uplift", "expected_value_saved"):
        assert ks_2samp(control[column], treated[column]).pvalue > 0.001, column
    # not the bottom or the top of the ranking: spread over the whole of it
    assert control["rank"].mean() == pytest.approx(plan["rank"].mean(), rel=0.1)
    again = plan_audience(scored(40_000), 10.0, 60_000.0, 0.1, seed=3)
    other = plan_audience(scored(40_000), 10.0, 60_000.0, 0.1, seed=4)
    assert again["arm"].tolist() == plan["arm"].tolist() and other["arm"].tolist() != plan["arm"].tolist()


def test_a_bad_share_or_budget_is_one_sentence():
    from features.errors import UserError

    with pytest.raises(UserError, match="control share"):
        plan_audience(scored(10), 1.0, 10.0, 1.0)
    with pytest.raises(UserError, match="must not be negative"):
        plan_audience(scored(10), 1.0, -1.0, 0.1)


@pytest.fixture(scope="module")
def online_dir(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset's online snapshot."""
    from features.online import build_online_snapshot

    out = tmp_path_factory.mktemp("plan") / "online"
    build_online_snapshot(tiny_data, out)
    return out


def test_the_plan_command_writes_a_campaigns_table_that_can_be_measured(
    uplift_run, online_dir: Path, tiny_data_copy: Path, tmp_path: Path
):
    from typer.testing import CliRunner

    from crm.cli import app
    from features.contract import validate

    out = tmp_path / "plan.csv"
    args = [
        "retention-plan",
        "--offer",
        "coupon",
        "--budget",
        "500",
        "--out",
        str(out),
        "--snapshot",
        str(online_dir),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = pd.read_csv(out)
    assert list(plan.columns[:7]) == ["customer_id", "campaign_id", "ts", "arm", "offer", "channel", "cost"]
    assert plan["cost"].sum() <= 500 and (plan["expected_value_saved"] > 0).all()
    assert (plan["arm"] == "control").sum() == round(0.1 * len(plan))
    # the plan is a campaigns table: as the data folder's campaigns it passes the contract
    plan.iloc[:, :7].to_csv(tiny_data_copy / "campaigns.csv", index=False)
    for part in (tiny_data_copy / "campaigns").iterdir():
        part.unlink()
    (tiny_data_copy / "campaigns").rmdir()
    report = validate(tiny_data_copy, max_reject_share=0.0)
    assert report.tables["campaigns"].rows_clean == len(plan)


def test_an_offer_the_model_does_not_know_is_one_sentence(uplift_run, online_dir: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from crm.cli import app

    args = ["retention-plan", "--offer", "bundle", "--budget", "100", "--out", str(tmp_path / "p.csv")]
    result = CliRunner().invoke(app, [*args, "--snapshot", str(online_dir)])
    assert result.exit_code == 2 and "no learner for the offer 'bundle'" in result.output
