"""Serving-side recommender: ragged lists, business filters, FAISS search, fallback, batch job."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from features.errors import UserError
from features.store import Store
from serving.batch import BatchRecommendConfig, batch_recommend
from serving.bundle import RECENT_SLOTS, CategoryIntent, ItemLists, RecommenderBundle
from serving.filters import BusinessFilters, MaskCache, drop_excluded
from serving.retrieval import Retrieval

CATEGORIES = np.array(
    ["phone", "phone", "accessory", "accessory", "wearable", "tv", "tv", "laptop"], dtype=object
)


def hand_bundle(seed: int = 0) -> RecommenderBundle:
    """8 items, 3 customers, random towers; item 7 inactive; popularity falls with the item number."""
    rng = np.random.default_rng(seed)
    n_items, n_customers, dim, hidden = len(CATEGORIES), 3, 4, 6
    return RecommenderBundle(
        item_ids=np.array([f"I{i}" for i in range(n_items)], dtype=object),
        item_category=CATEGORIES,
        item_active=np.array([True] * 7 + [False]),
        item_vectors=rng.standard_normal((n_items, dim + 1)).astype(np.float32),
        popularity=np.linspace(1.0, 0.1, n_items),
        customer_ids=np.array(["C0", "C1", "C2"], dtype=object),
        customer_static=rng.standard_normal((n_customers + 1, hidden)).astype(np.float32),
        history_table=rng.standard_normal((n_items + 1, dim)).astype(np.float32),
        w_history=rng.standard_normal((dim, hidden)).astype(np.float32),
        w_out=rng.standard_normal((hidden, dim)).astype(np.float32),
        b_out=np.zeros(dim, dtype=np.float32),
        owned=ItemLists.from_lists([[0, 2], [], [1, 3, 4]]),
        recent=ItemLists.from_lists([[2, 0], [], [4]]),
        meta={},
    )


def with_intent(bundle: RecommenderBundle, seed: int = 1) -> RecommenderBundle:
    """The same towers with a refinement per customer and a random category head."""
    rng = np.random.default_rng(seed)
    categories = np.unique(bundle.item_category).astype(object)
    n_customers, n_cat, hidden, dim = len(bundle.customer_ids), len(categories), 5, bundle.dim
    onehot = np.eye(n_cat, dtype=np.float32)[pd.Index(categories).get_indexer(bundle.item_category)]
    offset = rng.standard_normal((n_customers + 1, dim)).astype(np.float32)
    offset[0] = 0.0
    return replace(
        bundle,
        item_vectors=np.hstack([bundle.item_vectors, onehot]),
        customer_offset=offset,
        intent=CategoryIntent(
            categories=categories,
            static=rng.standard_normal((n_customers + 1, hidden)).astype(np.float32),
            w_recent=rng.standard_normal((RECENT_SLOTS * n_cat, hidden)).astype(np.float32),
            w_out=rng.standard_normal((hidden, n_cat)).astype(np.float32),
            b_out=rng.standard_normal(n_cat).astype(np.float32),
        ),
    )


@pytest.fixture(params=["towers", "towers+intent"])
def retrieval(request) -> Retrieval:
    bundle = hand_bundle()
    return Retrieval(with_intent(bundle) if request.param == "towers+intent" else bundle)


def brute_force(r: Retrieval, customer: str, k: int, banned: set[int], allowed: np.ndarray) -> list[int]:
    """Reference ranking: every item scored, banned and disallowed items removed."""
    row = r.customer_rows([customer])
    pos = row[0]
    recent = r.bundle.recent.take(row) if pos >= 0 else ItemLists.empty(1)
    scores = r.customer_vectors(row, recent) @ r.bundle.item_vectors.T
    order = [int(j) for j in np.argsort(-scores[0], kind="stable") if allowed[j] and j not in banned]
    return order[:k]


def test_item_lists_take_matches_rows() -> None:
    lists = ItemLists.from_lists([[1, 2], [], [3], [4, 5, 6]])
    taken = lists.take(np.array([3, -1, 0, 2]))
    assert [taken.row(i).tolist() for i in range(4)] == [[4, 5, 6], [], [1, 2], [3]]


def test_drop_excluded_keeps_rank_order_and_pads() -> None:
    candidates = np.array([[5, 1, 2, 3], [0, 1, -1, -1]])
    excluded = ItemLists.from_lists([[1, 3], [0]])
    kept = drop_excluded(candidates, excluded, n_items=8, k=3)
    assert kept.tolist() == [[5, 2, -1], [1, -1, -1]]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (BusinessFilters(), [True] * 7 + [False]),
        (BusinessFilters(only_active=False), [True] * 8),
        (BusinessFilters(categories=["tv", "laptop"]), [False] * 5 + [True, True, False]),
        (BusinessFilters(exclude_categories=["phone"]), [False, False] + [True] * 5 + [False]),
    ],
)
def test_item_mask(filters: BusinessFilters, expected: list[bool]) -> None:
    b = hand_bundle()
    assert filters.item_mask(b.item_category, b.item_active).tolist() == expected


def test_search_equals_brute_force_without_owned_or_inactive(retrieval: Retrieval) -> None:
    recs = retrieval.recommend_arrays(["C0", "C1", "C2"], k=4)
    allowed = retrieval.bundle.item_active
    for i, c in enumerate(["C0", "C1", "C2"]):
        banned = set(retrieval.bundle.owned.row(i).tolist())
        assert recs.items[i].tolist() == brute_force(retrieval, c, 4, banned, allowed)
        assert not recs.fallback[i]
        assert np.all(np.diff(recs.scores[i]) <= 1e-6)  # best first


def test_owned_inactive_and_denied_categories_never_offered(retrieval: Retrieval) -> None:
    for k in (1, 3, 8):
        out = retrieval.recommend(["C0", "C2"], k=k, exclude_categories=["tv"])
        for row, owned in zip(out, (["I0", "I2"], ["I1", "I3", "I4"]), strict=True):
            ids = [x["item_id"] for x in row["items"]]
            assert not set(ids) & set(owned)
            assert "I7" not in ids  # inactive
            assert all(x["category"] != "tv" for x in row["items"])
            assert len(ids) == len(set(ids)) <= k


def test_category_allow_list_and_owned_switch(retrieval: Retrieval) -> None:
    only = retrieval.recommend(["C2"], k=5, categories=["phone", "accessory"], exclude_owned=False)[0]
    assert {x["category"] for x in only["items"]} <= {"phone", "accessory"}
    assert {x["item_id"] for x in only["items"]} == {"I0", "I1", "I2", "I3"}  # owned allowed now


def test_unknown_customer_gets_popularity_with_fallback_flag(retrieval: Retrieval) -> None:
    out = retrieval.recommend(["nobody", "C1"], k=3)
    assert out[0]["fallback"] is True and out[1]["fallback"] is False
    assert [x["item_id"] for x in out[0]["items"]] == ["I0", "I1", "I2"]
    owned = retrieval.recommend(["nobody"], k=3, owned_items={"nobody": ["I0"]})[0]
    assert [x["item_id"] for x in owned["items"]] == ["I1", "I2", "I3"]


def test_fresh_recent_items_change_the_query_and_count_as_owned(retrieval: Retrieval) -> None:
    before = retrieval.recommend(["C1"], k=8)[0]
    after = retrieval.recommend(["C1"], k=8, recent_items={"C1": ["I5"]})[0]
    assert before["items"] != after["items"]
    assert "I5" not in [x["item_id"] for x in after["items"]]
    # an unknown customer with a fresh purchase is answered by the towers, not by popularity
    assert retrieval.recommend(["new"], k=3, recent_items={"new": ["I5"]})[0]["fallback"] is False


def test_bundle_round_trip(tmp_path, retrieval: Retrieval) -> None:
    loaded = Retrieval.load(retrieval.bundle.save(tmp_path / "b"))
    a = retrieval.recommend_arrays(["C0", "C1", "x"], k=5)
    b = loaded.recommend_arrays(["C0", "C1", "x"], k=5)
    assert np.array_equal(a.items, b.items) and np.allclose(a.scores, b.scores)


def test_intent_scores_are_category_log_probability_plus_within_category_log_softmax() -> None:
    towers = Retrieval(hand_bundle())
    b = with_intent(hand_bundle())
    served = Retrieval(b)
    rows, recent = np.array([0, 1, 2, -1]), ItemLists.from_lists([[2, 0, 5, 6], [], [4], [1]])
    scores = served.customer_vectors(rows, recent) @ b.item_vectors.T
    # by hand: the towers' logits with the offset, normalised per category, plus log P(category)
    u = towers.customer_vectors(rows, recent)
    u[:, :-1] += b.customer_offset[rows + 1]
    logits = u @ hand_bundle().item_vectors.T
    codes = pd.Index(b.intent.categories).get_indexer(b.item_category)
    newest = np.full((4, RECENT_SLOTS), -1)
    for i in range(4):
        first = recent.row(i)[:RECENT_SLOTS]
        newest[i, : len(first)] = codes[first]
    onehot = np.zeros((4, RECENT_SLOTS * len(b.intent.categories)))
    for i, slot in zip(*np.nonzero(newest >= 0), strict=True):
        onehot[i, slot * len(b.intent.categories) + newest[i, slot]] = 1
    head = np.maximum(b.intent.static[rows + 1] + onehot @ b.intent.w_recent, 0) @ b.intent.w_out
    log_p = -np.log1p(np.exp(-(head + b.intent.b_out)))
    for c in range(len(b.intent.categories)):
        cols = codes == c
        within = logits[:, cols] - np.logaddexp.reduce(logits[:, cols], axis=1, keepdims=True)
        assert np.allclose(scores[:, cols], within + log_p[:, [c]], atol=1e-4)
        # inside a category the towers' order stands
        assert np.array_equal(np.argsort(-scores[:, cols], axis=1), np.argsort(-logits[:, cols], axis=1))


def test_intent_whose_categories_miss_items_is_a_user_error() -> None:
    b = with_intent(hand_bundle())
    b = replace(b, intent=replace(b.intent, categories=b.intent.categories[1:]))
    with pytest.raises(UserError, match="intent categories"):
        Retrieval(b)


def test_bad_k_is_a_user_error(retrieval: Retrieval) -> None:
    with pytest.raises(UserError, match="k must"):
        retrieval.recommend_arrays(["C0"], k=0)


def test_batch_job_reports_missing_model_and_bad_audience(tmp_path) -> None:
    empty = Store.at(tmp_path / "empty")  # no models at all
    audience = tmp_path / "audience.csv"
    pd.DataFrame({"who": ["C0"]}).to_csv(audience, index=False)
    with pytest.raises(UserError, match="customer_id"):
        batch_recommend(BatchRecommendConfig(customers=audience, out=tmp_path / "out.csv", store=empty))
    pd.DataFrame({"customer_id": ["C0"]}).to_csv(audience, index=False)
    with pytest.raises(UserError, match="No recommender"):
        batch_recommend(
            BatchRecommendConfig(
                customers=audience,
                out=tmp_path / "out.csv",
                model_uri="models:/recommender@champion",
                store=empty,
            )
        )


def test_item_lists_union_and_slice_match_per_row_numpy() -> None:
    a = ItemLists.from_lists([[5, 1], [], [3, 3], [7], []])
    b = ItemLists.from_lists([[1, 2], [4], [], [0, 7], []])
    union = a.union(b)
    assert [union.row(r).tolist() for r in range(5)] == [
        np.union1d(a.row(r), b.row(r)).tolist() for r in range(5)
    ]
    part = a.slice(1, 4)
    assert [part.row(r).tolist() for r in range(3)] == [[], [3, 3], [7]]
    assert ItemLists.empty(2).union(ItemLists.empty(2)).lengths().tolist() == [0, 0]


def test_mask_cache_is_bounded_and_shares_builds_of_equal_masks() -> None:
    b = hand_bundle()
    cache = MaskCache(b.item_category, b.item_active, capacity=2)
    builds = []

    def build(allowed: np.ndarray) -> int:
        builds.append(int(allowed.sum()))
        return len(builds)

    phone_tv = cache.mask(BusinessFilters(categories=["phone", "tv"]))
    tv_phone = cache.mask(BusinessFilters(categories=["tv", "phone"]))
    assert phone_tv.key == tv_phone.key
    assert cache.built(phone_tv, build) == cache.built(tv_phone, build) == 1  # one build for both
    assert cache.built(cache.mask(BusinessFilters(categories=["tv"])), build) == 2
    assert cache.built(phone_tv, build) == 1  # still cached, now the newest
    assert cache.built(cache.mask(BusinessFilters(categories=["laptop"])), build) == 3  # evicts ["tv"]
    assert cache.built(cache.mask(BusinessFilters(categories=["tv"])), build) == 4  # rebuilt
    assert builds == [4, 2, 0, 2]  # allowed items per build (the laptop is inactive)


# --- scores a person can compare, and how the items read ------------------------------------------


def softmax_over_candidates(r: Retrieval, customer: str, candidates: np.ndarray) -> np.ndarray:
    """(n_items,) the softmax of every item's score over ``candidates`` (a bool mask), 0 elsewhere."""
    row = r.customer_rows([customer])
    recent = r.bundle.recent.take(row) if row[0] >= 0 else ItemLists.empty(1)
    scores = (r.customer_vectors(row, recent) @ r.bundle.item_vectors.T)[0].astype(np.float64)
    exp = np.where(candidates, np.exp(scores - scores[candidates].max()), 0.0)
    return exp / exp.sum()


@pytest.mark.parametrize("filters", [None, BusinessFilters(categories=["phone", "accessory", "tv"])])
def test_probability_is_the_softmax_over_the_candidates(retrieval: Retrieval, filters) -> None:
    b = retrieval.bundle
    allowed = (filters or BusinessFilters()).item_mask(b.item_category, b.item_active)
    for k in (2, 8):
        recs = retrieval.recommend_arrays(["C0", "C1", "C2"], k=k, filters=filters)
        for i, c in enumerate(["C0", "C1", "C2"]):
            candidates = allowed.copy()
            candidates[np.union1d(b.owned.row(i), b.recent.row(i))] = False
            expected = softmax_over_candidates(retrieval, c, candidates)
            shown = recs.items[i][recs.items[i] >= 0]
            assert np.allclose(recs.probability[i, : len(shown)], expected[shown], atol=1e-6)
            assert np.all(np.diff(recs.probability[i]) <= 1e-7)  # the scores' order
            if k >= candidates.sum():  # every candidate shown: the list sums to 1
                assert np.isclose(recs.probability[i].sum(), 1.0, atol=1e-5)


def test_fallback_probability_is_the_popularity_share_among_the_same_candidates(retrieval: Retrieval) -> None:
    b = retrieval.bundle
    recs = retrieval.recommend_rows(
        np.array([-1, -1]), ItemLists.empty(2), ItemLists.from_lists([[], [0]]), k=8
    )
    assert recs.fallback.all()
    for i, owned in enumerate(([], [0])):
        candidates = b.item_active.copy()
        candidates[owned] = False
        shown = recs.items[i][recs.items[i] >= 0]
        assert len(shown) == candidates.sum()
        share = b.popularity[shown] / b.popularity[candidates].sum()
        assert np.allclose(recs.probability[i, : len(shown)], share, atol=1e-7)
        assert np.isclose(recs.probability[i].sum(), 1.0, atol=1e-6)  # as the model's lists do
        assert np.all(np.diff(recs.probability[i]) <= 0)


def test_answers_from_the_bundle_alone(retrieval: Retrieval) -> None:
    """Without the online snapshot: no subcategory nor price, the score is the probability rounded,
    and the reasons read the training purchases (no dates)."""
    from serving.reasons import parse

    for answer in retrieval.recommend(["C0", "C2", "nobody"], k=5):
        for item in answer["items"]:
            assert set(item) == {"item_id", "category", "subcategory", "price", "score", "reason"}
            assert item["subcategory"] is None and item["price"] is None
            assert 0.0 <= item["score"] <= 1.0 and round(item["score"], 6) == item["score"]
            code, _ = parse(item["reason"])
            assert code not in ("goes_with", "popular_month", "popular_in_category_month")  # no dates
    accessories = retrieval.recommend(["C2"], k=5, categories=["accessory"], exclude_owned=False)[0]
    # C2 owns phone I1: its accessories go with the phone, date unknown
    assert {x["reason"] for x in accessories["items"]} == {"goes with your phone"}
    frame = retrieval.to_frame(retrieval.recommend_arrays(["C0", "nobody"], k=3))
    assert list(frame.columns) == [
        "customer_id", "rank", "item_id", "category", "subcategory", "price", "score", "reason", "fallback"
    ]  # fmt: skip
    assert frame["score"].between(0, 1).all() and frame["reason"].str.len().gt(0).all()
