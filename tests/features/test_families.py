"""The declared feature families: metadata, reason phrases, SQL dialects, the generated docs, the CLI."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.contract import _connect
from features.families import (
    DUCKDB,
    FAMILIES,
    LIFECYCLE,
    SPARK,
    WINDOWS,
    all_features,
    categorical_features,
    feature_set_version,
    model_features,
    reference_markdown,
)
from features.vocab import LIFECYCLE_STAGES

AS_OF = datetime(2025, 7, 1)


def test_every_family_is_declared_with_name_version_description_and_typed_features():
    fams = FAMILIES
    names = [f.name for fam in fams for f in fam.features]
    assert len(names) == len(set(names)), "feature names must be unique across families"
    expected = {"rfm", "engagement", "ecosystem", "phone_age", "service", "loyalty", "channel_mix",
                "campaign_response", "profile", "lifecycle"}  # fmt: skip
    assert {fam.name for fam in fams} == expected
    for fam in fams:
        assert fam.version >= 1 and fam.description and fam.features
        for f in fam.features:
            assert f.dtype in ("int", "float", "str") and f.description and f.phrase and f.render(AS_OF)
            window = re.search(r"_(\d+)d$", f.name)
            if window:  # a name that promises a window declares it, and the family lists it
                assert f.window_days == int(window.group(1)) and f.window_days in fam.windows
    assert set(WINDOWS) <= {f.window_days for _, f in all_features().values()}
    assert set(categorical_features()) == {"member_tier", "age_band", "gender", "region", "lifecycle_stage"}


def test_the_lifecycle_stage_is_declared_by_rules_over_the_vocabulary_and_is_no_model_input():
    (stage,) = LIFECYCLE.features
    assert stage.name == "lifecycle_stage" and stage.dtype == "str"
    assert {level.value for level in stage.levels} == set(LIFECYCLE_STAGES)
    # every level but the last has a condition; the last one takes the rest
    assert all(level.when is not None and level.rule for level in stage.levels[:-1])
    assert stage.levels[-1].when is None
    sql = stage.render(AS_OF)
    assert sql.startswith("CASE ") and all(f"'{s}'" in sql for s in LIFECYCLE_STAGES)
    assert "lifecycle_stage" in all_features() and "lifecycle_stage" not in model_features()
    assert set(model_features()) == set(all_features()) - {"lifecycle_stage"}


@pytest.mark.parametrize(
    ("feature", "value", "words"),
    [
        ("service_tickets_90d", 3.0, "3 service tickets in the last 90 days"),
        ("phone_age_days", 365.25, "phone is 12 months old"),
        ("phone_age_days", float("nan"), "has no phone from us"),
        ("days_since_last_purchase", None, "has never bought"),
        ("tenure_days", 730.5, "customer for 2.0 years"),
        ("engagement_trend", 0.4, "engagement at 40% of its previous level"),
        ("member_tier", "gold", "gold member"),
        ("customer_value", 1234.0, "worth 1,234 a year"),
        ("lifecycle_stage", "at_risk", "lifecycle stage at_risk"),
    ],
)
def test_phrases_turn_values_into_marketer_sentences(feature: str, value, words: str):
    assert all_features()[feature][1].say(value) == words


def test_every_phrase_formats_a_typical_value():
    for _, f in all_features().values():
        text = f.say("x" if f.dtype == "str" else 12.0)
        assert "{" not in text and text


def test_day_differences_are_fractional_days_before_as_of():
    con = _connect()
    expr = DUCKDB.days_before(DUCKDB.ts(datetime(2025, 6, 29, 12)), AS_OF)
    assert con.execute(f"SELECT {expr}").fetchone()[0] == pytest.approx(1.5)
    # Spark spells the same arithmetic with its own function names, and no DuckDB-only ones
    spark = SPARK.days_before("x", AS_OF)
    assert (
        spark != expr
        and "epoch" not in spark
        and spark.count("(") == DUCKDB.days_before("x", AS_OF).count("(")
    )


def test_declarations_need_no_date_and_only_the_sql_renders_one():
    assert all(fam.entity == "customer_id" for fam in FAMILIES)
    later = datetime(2026, 1, 1)
    dated = {f.name for fam in FAMILIES for f in fam.features if f.render(AS_OF) != f.render(later)}
    assert dated == {"days_since_last_purchase", "days_since_first_purchase", "recency_over_purchase_gap",
                     "days_since_last_event", "phone_age_days", "age", "age_band", "tenure_days",
                     "lifecycle_stage"}  # fmt: skip
    assert "2025" in all_features()["age"][1].render(AS_OF)
    # the dialect changes the spelling of the day arithmetic only
    assert all_features()["purchase_span_days"][1].render(AS_OF, SPARK).count("unix_micros(") == 2


def test_feature_set_version_is_stable_and_names_its_major():
    assert feature_set_version() == feature_set_version()
    assert re.fullmatch(r"1\.[0-9a-f]{8}", feature_set_version())


def test_feature_reference_doc_is_up_to_date():
    doc = Path(__file__).resolve().parents[2] / "docs" / "features.md"
    assert doc.read_text() == reference_markdown(), (
        "regenerate: python -m features.families > docs/features.md"
    )
    for name in all_features():
        assert f"`{name}`" in doc.read_text()
    for level in LIFECYCLE.features[0].levels:  # the stage rules are in the reference
        assert f"`{level.value}`: {level.rule}" in doc.read_text()


def test_cli_builds_snapshots_and_a_manifest(hand_log: Path, tmp_path: Path):
    from crm.cli import app

    out = tmp_path / "features"
    result = CliRunner().invoke(
        app,
        ["features", "build", "--data", str(hand_log), "--as-of", "2025-07-01,2025-04-01", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["as_of"] == ["2025-07-01", "2025-04-01"]
    assert manifest["rows"] == {"2025-07-01": 3, "2025-04-01": 2}  # C's first event is in June
    assert manifest["version"] == feature_set_version()
    assert (out / "snapshot_as_of=2025-07-01.parquet").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "July 1st"], "is not a date: expected YYYY-MM-DD"),
        (["--as-of", "2025-07-01", "--engine", "pandas"], "Unknown engine 'pandas'"),
    ],
)
def test_cli_bad_input_is_one_sentence(hand_log: Path, tmp_path: Path, args: list[str], message: str):
    from crm.cli import app

    result = CliRunner().invoke(
        app, ["features", "build", "--data", str(hand_log), "--out", str(tmp_path), *args]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
