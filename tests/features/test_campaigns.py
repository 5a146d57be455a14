"""The campaigns table of the input contract, and the campaign outcomes and their measurement."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from features.contract import REJECT_REASONS, open_validated, validate

REFERENCE = datetime(2026, 1, 1)


def some_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "ts": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"]),
            "event_type": ["purchase", "ad_impression", "ad_click"],
            "item_id": ["I1", "I2", None],
            "quantity": [1, None, None],
            "amount": [99.0, None, None],
            "channel": ["mall", "social", "mall"],
        }
    )


def good_campaign_rows(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(n)],
            "campaign_id": ["CMP1"] * n,
            "ts": ["2025-03-03 00:00:00"] * n,
            "arm": ["treatment" if i % 3 else "control" for i in range(n)],
            "offer": ["coupon"] * n,
            "channel": ["app"] * n,
            "cost": [20.0 if i % 3 else 0.0 for i in range(n)],
        }
    )


# one bad row per reason, each built from a good treatment row
BAD_CAMPAIGN_ROWS = {
    "null_customer_id": {"customer_id": None},
    "null_campaign_id": {"campaign_id": None},
    "bad_timestamp": {"ts": "soon"},
    "future_timestamp": {"ts": "2031-01-01 00:00:00"},
    "unknown_arm": {"arm": "maybe"},
    "missing_offer": {"offer": None},
    "unknown_channel": {"channel": "carrier_pigeon"},
    "negative_cost": {"cost": -1.0},
}


def test_every_campaign_reason_is_covered_by_this_file():
    assert set(BAD_CAMPAIGN_ROWS) | {"duplicate_assignment"} == set(REJECT_REASONS["campaigns"])


def test_each_bad_campaign_row_goes_to_rejects_with_its_reason(tmp_path: Path):
    some_events().to_parquet(tmp_path / "events.parquet", index=False)
    good = good_campaign_rows()
    template = good.iloc[1].to_dict()
    bad = [
        template | {"customer_id": f"B{k}"} | change for k, change in enumerate(BAD_CAMPAIGN_ROWS.values())
    ]
    twice = good.iloc[[2]].assign(arm="control")  # the same customer drawn twice into one campaign
    pd.concat([good, pd.DataFrame(bad), twice], ignore_index=True).to_csv(
        tmp_path / "campaigns.csv", index=False
    )

    report = validate(tmp_path, reference_time=REFERENCE, max_reject_share=0.5)

    campaigns = report.tables["campaigns"]
    assert campaigns.rejects == {reason: 1 for reason in REJECT_REASONS["campaigns"]}
    assert campaigns.rows_clean == len(good)
    rejects = pd.read_parquet(tmp_path / "rejects" / "campaigns.parquet")
    assert rejects.loc[rejects["customer_id"] == "B4", "reason"].tolist() == ["unknown_arm"]
    con = open_validated(tmp_path, max_reject_share=0.5)
    arms = dict(con.execute("SELECT arm, count(*) FROM campaigns GROUP BY arm").fetchall())
    assert set(arms) == {"treatment", "control"} and sum(arms.values()) == len(good)


def test_arms_are_read_in_any_case_and_the_table_is_optional(tmp_path: Path):
    some_events().to_parquet(tmp_path / "events.parquet", index=False)
    con = open_validated(tmp_path)
    assert con.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0  # an empty view
    good_campaign_rows().assign(arm=lambda f: f["arm"].str.upper()).to_parquet(
        tmp_path / "campaigns.parquet", index=False
    )
    report = validate(tmp_path, reference_time=REFERENCE, max_reject_share=0.0)
    assert report.tables["campaigns"].rows_rejected == 0


def test_exposure_events_pass_the_contract(tmp_path: Path):
    some_events().to_parquet(tmp_path / "events.parquet", index=False)
    report = validate(tmp_path, reference_time=REFERENCE, max_reject_share=0.0)
    assert report.tables["events"].rows_clean == 3


@pytest.mark.parametrize("column", ["campaign_id", "arm", "offer"])
def test_a_missing_required_campaign_column_is_one_sentence(tmp_path: Path, column: str):
    from features.contract import ContractError

    some_events().to_parquet(tmp_path / "events.parquet", index=False)
    good_campaign_rows().drop(columns=column).to_parquet(tmp_path / "campaigns.parquet", index=False)
    with pytest.raises(ContractError, match=f"no column '{column}'"):
        validate(tmp_path, reference_time=REFERENCE)


def hand_built_campaign(folder: Path) -> Path:
    """40 customers in campaign CMP1 on 2025-03-03: of 20 treated, 15 are active in the retention
    window and spend 100 each in it; of 20 control, 10 are, spending 50; an event before the start
    and one after the window count for neither."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, events = good_campaign_rows(40), []
    rows["arm"] = ["treatment" if i < 20 else "control" for i in range(40)]
    rows["cost"] = [20.0 if i < 20 else 0.0 for i in range(40)]
    start = pd.Timestamp("2025-03-03")
    for i, cid in enumerate(rows["customer_id"]):
        treated, k = i < 20, i % 20
        events.append((cid, start - pd.Timedelta(days=3), "view", "I1", None, None))  # before: ignored
        retained = k < (15 if treated else 10)
        if retained:
            events.append(
                (cid, start + pd.Timedelta(days=40), "purchase", "I1", 1, 100.0 if treated else 50.0)
            )
        events.append((cid, start + pd.Timedelta(days=200), "view", "I1", None, None))  # after the window
    frame = pd.DataFrame(events, columns=["customer_id", "ts", "event_type", "item_id", "quantity", "amount"])
    frame.assign(channel="mall").to_parquet(folder / "events.parquet", index=False)
    rows.to_parquet(folder / "campaigns.parquet", index=False)
    return folder


def test_measure_is_treatment_minus_control_with_a_95_interval(tmp_path: Path):
    from features.campaigns import Z_95, measure_campaign

    con = open_validated(hand_built_campaign(tmp_path), max_reject_share=0.0)
    m = measure_campaign(con, "CMP1")
    assert (m.treated, m.control) == (20, 20)
    assert m.retention.treated_mean == 0.75 and m.retention.control_mean == 0.5
    assert m.retention.difference == pytest.approx(0.25)
    se = (0.75 * 0.25 * 20 / 19 / 20 + 0.5 * 0.5 * 20 / 19 / 20) ** 0.5  # sample variances (ddof 1)
    assert m.retention.low == pytest.approx(0.25 - Z_95 * se) and m.retention.high == pytest.approx(
        0.25 + Z_95 * se
    )
    assert m.revenue.difference == pytest.approx(0.75 * 100 - 0.5 * 50)
    assert m.cost_per_treated == pytest.approx(20.0)


def test_an_unknown_campaign_or_a_window_past_the_data_is_one_sentence(tmp_path: Path):
    from features.campaigns import OutcomeWindow, measure_campaign
    from features.errors import UserError

    con = open_validated(hand_built_campaign(tmp_path), max_reject_share=0.0)
    with pytest.raises(UserError, match="No campaign 'CMP9'.*CMP1"):
        measure_campaign(con, "CMP9")
    with pytest.raises(UserError, match="after the last event"):
        measure_campaign(con, "CMP1", OutcomeWindow(offset_days=28, days=400))


def test_campaign_measure_command(tmp_path: Path):
    import json

    from typer.testing import CliRunner

    from crm.cli import app

    data = hand_built_campaign(tmp_path / "data")
    out = tmp_path / "measure.json"
    result = CliRunner().invoke(
        app, ["campaign", "measure", "--campaign", "CMP1", "--data", str(data), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["retention"]["difference"] == pytest.approx(0.25)
    missing = CliRunner().invoke(app, ["campaign", "measure", "--campaign", "nope", "--data", str(data)])
    assert missing.exit_code == 2 and "No campaign 'nope'" in missing.output


def test_the_uplift_inputs_never_see_an_event_at_or_after_the_campaign_start(tiny_data_copy: Path):
    from features.campaigns import campaign_frame, find_campaign
    from features.families import model_features

    con = open_validated(tiny_data_copy)
    campaign = find_campaign(con, "CMP-20241202-coupon")
    before = campaign_frame(con, campaign)
    con.close()
    # flood the audience with events from the start on: purchases, tickets, app opens
    audience = before["customer_id"].tolist()
    start = pd.Timestamp(campaign.start)
    later = pd.DataFrame(
        {
            "customer_id": audience * 3,
            "ts": [start] * len(audience) + [start + pd.Timedelta(days=1)] * len(audience) * 2,
            "event_type": ["purchase"] * len(audience) + ["service_ticket", "app_open"] * len(audience),
            "item_id": ["I00001"] * len(audience) + [None] * len(audience) * 2,
            "quantity": [1] * len(audience) + [None] * len(audience) * 2,
            "amount": [999.0] * len(audience) + [None] * len(audience) * 2,
            "channel": ["mall"] * len(audience) * 3,
        }
    )
    later.astype({"ts": "datetime64[us]"}).to_parquet(
        tiny_data_copy / "events" / "part-later.parquet", index=False
    )
    after = campaign_frame(open_validated(tiny_data_copy), campaign)
    features = model_features()
    pd.testing.assert_frame_equal(before[features], after[features])
    assert after["revenue"].sum() > before["revenue"].sum()  # the outcome did see them
