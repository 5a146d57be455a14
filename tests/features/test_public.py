"""Public data imports: the published sizes, and they pass the contract untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.contract import open_validated
from features.public import import_dataset


@pytest.mark.parametrize(
    "name, events, customers, items",
    [("cdnow", 69_659, 23_570, 0), ("movielens-100k", 100_000, 943, 1_682)],
)
def test_import_gives_published_sizes_and_passes_the_contract(
    tmp_path: Path, name: str, events: int, customers: int, items: int
):
    counts = import_dataset(name, tmp_path)
    assert counts["events"] == events
    con = open_validated(tmp_path, max_reject_share=0.0)
    got = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), count(DISTINCT item_id) FROM events"
    ).fetchone()
    assert got == (events, customers, items)
    assert con.execute("SELECT DISTINCT event_type FROM events").fetchall() == [("purchase",)]


def test_movielens_items_take_first_genre_and_users_their_age(tmp_path: Path):
    import_dataset("movielens-100k", tmp_path)
    con = open_validated(tmp_path)
    toy_story = con.execute("SELECT category, subcategory FROM items WHERE item_id = 'M1'").fetchone()
    assert toy_story == ("animation", "children's")
    # user 1 is 24 in the source; ratings are from 1997-98
    assert con.execute("SELECT birth_year, gender FROM customers WHERE customer_id = 'U1'").fetchone() == (
        1974,
        "m",
    )


def test_cdnow_keeps_revenue(tmp_path: Path):
    import_dataset("cdnow", tmp_path)
    con = open_validated(tmp_path)
    total, first, last = con.execute("SELECT sum(amount), min(ts), max(ts) FROM events").fetchone()
    assert total == pytest.approx(2_500_315.63, abs=0.01)
    assert (first.year, last.year, last.month) == (1997, 1998, 6)
