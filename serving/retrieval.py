"""Recommendation at serving time: customer vectors in numpy, a FAISS index, business filters.

Customer vector (the numpy mirror of ``training.two_tower.CustomerTower``)::

    h = relu(static[c] + mean(history_table[recent items]) @ w_history)   # (n, hidden)
    u = normalise(h @ w_out + b_out)                                      # (n, dim)
    query = [u, 1]                                                        # (n, dim + 1)

``static[c]`` is the precomputed id-embedding and profile part of the first layer (row 0 is the
unknown-customer bucket); item vectors are ``[normalise(v) / temperature, bias]`` so that the
inner product is the model's logit. The recent-items mean is computed at request time, so a fresh
purchase changes the recommendations without retraining. With the bundle's refinement,
``customer_offset[c]`` is added to ``u``.

With the bundle's category intent the score becomes ``log P(buys in category) + log softmax of
the logits within the category``: the towers rank items inside a category, the intent weighs the
categories. The query then carries one more column per category (``log P - logsumexp of the
category's logits``) and each item vector a one-hot of its category, so the search stays one
inner product.

Every recommendation goes through one query, :meth:`Retrieval.recommend_rows` (customer rows,
recent and owned item positions, filters -> item positions, scores and probabilities), and every
answer through one builder, :class:`serving.reasons.Presenter` (the retrieval's own, from the
bundle alone, or the service's, from the online snapshot). The id-based entry points
(:meth:`recommend_arrays`, :meth:`recommend`) and the service only decide which lists to pass.

The probability of an item is the softmax of the scores over the candidates of the query: every
item the filters allow and the customer's exclusions leave, so the shown items of one list sum
to at most 1; for the popularity fallback, the item's share of the training purchases among the
same candidates. Both are the chance that the item is the next purchase among what could be
offered, by the model that answered, and compare across customers and fallbacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.errors import UserError
from serving.bundle import RECENT_SLOTS, ItemLists, RecommenderBundle
from serving.filters import BusinessFilters, ItemMask, MaskCache, drop_excluded
from serving.reasons import Presenter

if TYPE_CHECKING:
    from features.online import OnlineSnapshot
    from serving.live import LiveOverlay

CHUNK = 8192  # customers per search block: bounds memory at CHUNK x candidates
QUERY_BLOCK = 8 * CHUNK  # customers per block of query vectors
NO_ITEMS = np.zeros(0, dtype=np.int64)


@dataclass
class Recommendations:
    """Top-k per customer: item positions (-1 pads), scores, and who got the popularity fallback."""

    items: np.ndarray  # (n, k) int, -1 where fewer than k items qualify
    scores: np.ndarray  # (n, k) float32: the model's log-scores; the popularity share for fallbacks
    fallback: np.ndarray  # (n,) bool
    customer_ids: np.ndarray | None = None  # (n,) set by the id-based entry points
    # (n, k) float32 in [0, 1], 0 pads: the chance of each item among the query's candidates
    # (softmax of the scores; the popularity share for fallbacks), non-increasing like the scores
    probability: np.ndarray | None = None
    owned: ItemLists | None = None  # the owned and recent items the query had (for the reasons)
    recent: ItemLists | None = None


class SubIndex(NamedTuple):
    """A flat inner-product index over the items one mask allows, their positions and vectors."""

    index: Any
    positions: np.ndarray  # (m,) ascending item positions
    vectors: np.ndarray  # (m, dim) the same rows as the index holds


def _rows_of(lists: ItemLists, rows: np.ndarray) -> ItemLists:
    """The lists of ``rows`` (ascending, distinct); when that is every row (a one-customer request),
    the lists themselves, without the copy."""
    return lists if len(rows) == lists.rows else lists.take(rows)


class Retrieval:
    """The served recommender: customer vectors in numpy, a FAISS index over item vectors."""

    def __init__(self, bundle: RecommenderBundle) -> None:
        import faiss

        self.bundle = bundle
        self.n_items = len(bundle.item_ids)
        self.item_position = {item: i for i, item in enumerate(bundle.item_ids)}
        self.customer_position = pd.Index(bundle.customer_ids)
        # the same lookup one customer at a time, as a dict (no pandas per request)
        self.customer_row = {str(c): i for i, c in enumerate(bundle.customer_ids)}
        self.masks = MaskCache(bundle.item_category, bundle.item_active)
        self._faiss = faiss
        self._popular_order = np.argsort(-bundle.popularity, kind="stable")
        if bundle.intent is not None:
            self.item_category_code = pd.Index(bundle.intent.categories).get_indexer(bundle.item_category)
            if (self.item_category_code < 0).any() or len(np.unique(self.item_category_code)) < len(
                bundle.intent.categories
            ):
                raise UserError("The recommender bundle's intent categories do not match its items.")
            # for the logsumexp of each category's logits: the logit columns and a category one-hot
            n_cat = len(bundle.intent.categories)
            self._item_category_onehot = np.eye(n_cat, dtype=np.float32)[self.item_category_code]
            self._item_logit_vectors = np.ascontiguousarray(bundle.item_vectors[:, : bundle.dim + 1])

    @classmethod
    def load(cls, folder: str | Path) -> Retrieval:
        """The retrieval over the bundle saved in ``folder``."""
        return cls(RecommenderBundle.load(folder))

    @cached_property
    def presenter(self) -> Presenter:
        """How answers read from the bundle alone (no subcategory, price nor purchase dates)."""
        return Presenter.from_bundle(self.bundle)

    # --- lookups -----------------------------------------------------------------------------

    def customer_rows(self, customer_ids: Sequence[str]) -> np.ndarray:
        """Position of each customer in the bundle, -1 when unknown."""
        return self.customer_position.get_indexer(pd.Index(np.asarray(customer_ids, dtype=object)))

    def item_positions(self, item_ids: Iterable[str]) -> np.ndarray:
        """Positions of known items (unknown ids are dropped: the model cannot use them)."""
        pos = [self.item_position.get(i, -1) for i in item_ids]
        return np.asarray([p for p in pos if p >= 0], dtype=np.int64)

    def lists_from_ids(self, lists: Sequence[Iterable[str] | None]) -> ItemLists:
        """Item ids per row -> item positions per row (None: an empty list)."""
        return ItemLists.from_lists([self.item_positions(x if x is not None else ()) for x in lists])

    def lists_with_overrides(
        self,
        customer_ids: Sequence[str],
        rows: np.ndarray,
        overrides: Mapping[str, Iterable[str]] | None,
        base: ItemLists,
    ) -> ItemLists:
        """Per customer: the override list when given, else the bundle's list (empty if unknown)."""
        if overrides is None:
            return base.take(rows)
        return ItemLists.from_lists(
            [
                self.item_positions(overrides[c]) if c in overrides else (base.row(r) if r >= 0 else NO_ITEMS)
                for c, r in zip(customer_ids, rows, strict=True)
            ]
        )

    def fresh_lists(
        self, customer_ids: Sequence[str], snapshot: OnlineSnapshot, live: LiveOverlay | None = None
    ) -> tuple[np.ndarray, ItemLists, ItemLists]:
        """Rows, recent and owned items of each customer: the online snapshot's lists for the
        customers it knows (it is fresher than the training data), the bundle's for the others;
        with ``live``, what the event log says they bought since merged in (freshest of all)."""
        b, rows = self.bundle, [self.customer_row.get(c, -1) for c in customer_ids]
        recent, owned = [], []
        for c, r in zip(customer_ids, rows, strict=True):
            if snapshot.knows(c):
                recent.append(self.item_positions(snapshot.recent_items(c)))
                owned.append(self.item_positions(snapshot.owned_items(c)))
            elif r >= 0:
                recent.append(b.recent.row(r))
                owned.append(b.owned.row(r))
            else:
                recent.append(NO_ITEMS)
                owned.append(NO_ITEMS)
            fresh = live.get(c) if live is not None else None
            if fresh is not None:
                recent[-1], owned[-1] = fresh.merge(recent[-1], owned[-1], self.item_positions)
        return np.array(rows, dtype=np.int64), ItemLists.from_lists(recent), ItemLists.from_lists(owned)

    # --- the customer tower --------------------------------------------------------------------

    def customer_vectors(self, rows: np.ndarray, recent: ItemLists) -> np.ndarray:
        """(n, dim + 1) queries for customers at ``rows`` (-1 unknown) with their recent items."""
        b = self.bundle
        static = b.customer_static[np.asarray(rows) + 1]  # (n, hidden); unknown -> row 0
        lengths = recent.lengths()
        # mean of the history rows as a sparse (n, n_items + 1) averaging matrix times the table
        weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
        averaging = sp.csr_matrix(
            (weights, recent.indices + 1, recent.indptr), shape=(len(rows), len(b.history_table))
        )
        history = np.asarray(averaging @ b.history_table, dtype=np.float32)  # (n, dim_history)
        hidden = np.maximum(static + history @ b.w_history, 0.0)  # (n, hidden)
        u = hidden @ b.w_out + b.b_out  # (n, dim)
        u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
        if b.customer_offset is not None:
            u += b.customer_offset[np.asarray(rows) + 1]
        query = np.hstack([u, np.ones((len(rows), 1), dtype=np.float32)]).astype(np.float32)
        if b.intent is None:
            return query
        return np.hstack([query, self.category_offsets(rows, recent, query)]).astype(np.float32)

    def category_offsets(self, rows: np.ndarray, recent: ItemLists, query: np.ndarray) -> np.ndarray:
        """(n, n_categories) ``log P(buys in category) - logsumexp(logits of its items)``."""
        b = self.bundle
        lse = np.empty((len(rows), len(b.intent.categories)), dtype=np.float32)
        for start in range(0, len(rows), CHUNK):  # bounded memory: CHUNK x n_items logits
            logits = query[start : start + CHUNK, : b.dim + 1] @ self._item_logit_vectors.T
            # one shift per row: a category whose items all sit ~88 below the row's best underflows
            # to the floor, which only lowers items that could never reach the top
            peak = logits.max(axis=1, keepdims=True)
            logits -= peak
            np.exp(logits, out=logits)
            sums = logits @ self._item_category_onehot  # (n, n_categories)
            lse[start : start + CHUNK] = np.log(np.maximum(sums, 1e-30)) + peak
        newest = np.full((len(rows), RECENT_SLOTS), -1, dtype=np.int64)
        lengths = np.minimum(recent.lengths(), RECENT_SLOTS)
        for slot in range(RECENT_SLOTS):
            has = lengths > slot
            newest[has, slot] = self.item_category_code[recent.indices[recent.indptr[:-1][has] + slot]]
        return b.intent.log_probability(rows, newest) - lse

    # --- search --------------------------------------------------------------------------------

    def _sub_index(self, allowed: np.ndarray) -> SubIndex:
        """A flat inner-product index over the allowed items, their positions and vectors."""
        positions = np.flatnonzero(allowed)
        vectors = np.ascontiguousarray(self.bundle.item_vectors[positions], dtype=np.float32)
        index = self._faiss.IndexFlatIP(self.bundle.item_vectors.shape[1])
        index.add(vectors)
        return SubIndex(index, positions, vectors)

    def search(
        self, queries: np.ndarray, k: int, excluded: ItemLists, mask: ItemMask, with_probability: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Top-``k`` allowed items per query, skipping each row's excluded items; scores beside,
        and (``with_probability``) each item's softmax probability over the row's candidates."""
        index, positions, vectors = self.masks.built(mask, self._sub_index)
        n = len(queries)
        items = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        log_norm = np.full(n, np.inf) if with_probability else None
        if len(positions) == 0:
            return items, scores, _probability(scores, log_norm)
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            block_excl = excluded.slice(start, stop)
            # enough candidates that k survive the exclusions
            m = int(min(len(positions), k + (block_excl.lengths().max(initial=0))))
            found_scores, found = index.search(queries[start:stop], m)
            cand = np.where(found >= 0, positions[np.maximum(found, 0)], -1)
            items[start:stop], scores[start:stop] = drop_excluded(
                cand, block_excl, self.n_items, k, found_scores
            )
            if log_norm is not None:
                log_norm[start:stop] = _log_normalisers(queries[start:stop], vectors, positions, block_excl)
        return items, scores, _probability(scores, log_norm)

    def popular(
        self, k: int, excluded: ItemLists, mask: ItemMask
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The popularity fallback: most bought allowed items, minus each row's excluded items;
        their purchase shares, and those shares among the row's candidates (the probability)."""
        popularity = np.asarray(self.bundle.popularity, dtype=np.float64)
        order = self._popular_order[mask.allowed[self._popular_order]]
        m = int(min(len(order), k + excluded.lengths().max(initial=0)))
        cand = np.broadcast_to(order[:m], (excluded.rows, m)).copy()
        kept = drop_excluded(cand, excluded, self.n_items, k)
        shares = np.where(kept >= 0, popularity[np.maximum(kept, 0)], 0.0)
        # the candidates' total: every allowed item's share minus the row's excluded allowed ones
        total = popularity[mask.allowed].sum()
        rows = np.repeat(np.arange(excluded.rows), excluded.lengths())
        gone = popularity[excluded.indices] * mask.allowed[excluded.indices]
        totals = total - np.bincount(rows, weights=gone, minlength=excluded.rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            probability = np.where(totals[:, None] > 0, shares / totals[:, None], 0.0)
        scores = np.where(kept >= 0, shares, -np.inf).astype(np.float32)
        return kept, scores, np.clip(probability, 0.0, 1.0).astype(np.float32)

    # --- the one query ---------------------------------------------------------------------------

    def recommend_rows(
        self,
        rows: np.ndarray,
        recent: ItemLists,
        owned: ItemLists,
        k: int = 10,
        filters: BusinessFilters | None = None,
        blocked: ItemLists | None = None,
        with_probability: bool = True,
    ) -> Recommendations:
        """Top-``k`` item positions and scores for the customers at bundle ``rows`` (-1 unknown).

        ``recent`` (newest first) feeds the customer tower; with ``filters.exclude_owned`` neither
        ``owned`` nor ``recent`` items are offered: what was just bought counts as owned. An
        unknown customer with no recent items gets the popularity ranking (``fallback``).
        ``blocked`` items (asked to be left out, pushed lately) are never offered.
        ``with_probability`` (default): also each item's probability among the candidates (one
        more pass over the allowed items per query; evaluation can leave it out).
        """
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}.")
        filters = filters or BusinessFilters()
        n = len(rows)
        excluded = owned.union(recent) if filters.exclude_owned else ItemLists.empty(n)
        if blocked is not None:
            excluded = excluded.union(blocked)
        mask = self.masks.mask(filters)
        fallback = (rows < 0) & (recent.lengths() == 0)
        items = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        probability = np.zeros((n, k), dtype=np.float32) if with_probability else None
        model_rows = np.flatnonzero(~fallback)
        for start in range(0, len(model_rows), QUERY_BLOCK):  # bounded memory for the queries
            block = model_rows[start : start + QUERY_BLOCK]
            queries = self.customer_vectors(rows[block], _rows_of(recent, block))
            items[block], scores[block], found = self.search(
                queries, k, _rows_of(excluded, block), mask, with_probability
            )
            if probability is not None:
                probability[block] = found
        pop_rows = np.flatnonzero(fallback)
        if len(pop_rows):
            items[pop_rows], scores[pop_rows], shares = self.popular(k, _rows_of(excluded, pop_rows), mask)
            if probability is not None:
                probability[pop_rows] = shares
        return Recommendations(items, scores, fallback, probability=probability, owned=owned, recent=recent)

    # --- by customer id ---------------------------------------------------------------------------

    def recommend_arrays(
        self,
        customer_ids: Sequence[str],
        k: int = 10,
        filters: BusinessFilters | None = None,
        recent_items: Sequence[Iterable[str] | None] | None = None,
        owned_items: Sequence[Iterable[str] | None] | None = None,
        with_probability: bool = True,
    ) -> Recommendations:
        """Vectorised top-``k`` for a batch of customers (batch job, evaluation).

        ``recent_items`` / ``owned_items`` (one list per customer, or None to use the bundle's)
        let the caller pass fresher state, e.g. from the online snapshot; ``with_probability``:
        see :meth:`recommend_rows` (a ranking metric needs none).
        """
        rows = self.customer_rows(customer_ids)
        b = self.bundle
        recent = b.recent.take(rows) if recent_items is None else self.lists_from_ids(recent_items)
        owned = b.owned.take(rows) if owned_items is None else self.lists_from_ids(owned_items)
        recs = self.recommend_rows(rows, recent, owned, k, filters, with_probability=with_probability)
        return replace(recs, customer_ids=np.asarray(customer_ids, dtype=object))

    def recommend(
        self,
        customer_ids: Sequence[str],
        k: int = 10,
        exclude_owned: bool = True,
        categories: Sequence[str] | None = None,
        exclude_categories: Sequence[str] | None = None,
        recent_items: Mapping[str, Iterable[str]] | None = None,
        owned_items: Mapping[str, Iterable[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """Top-``k`` per customer as answers (see :meth:`answers`).

        ``recent_items`` / ``owned_items`` map customer ids to fresher lists (missing customers
        use the model's own); inactive items are never offered.
        """
        rows = self.customer_rows(customer_ids)
        recent = self.lists_with_overrides(customer_ids, rows, recent_items, self.bundle.recent)
        owned = self.lists_with_overrides(customer_ids, rows, owned_items, self.bundle.owned)
        filters = BusinessFilters(exclude_owned, True, categories, exclude_categories)
        return self.answers(customer_ids, self.recommend_rows(rows, recent, owned, k, filters))

    # --- answers -----------------------------------------------------------------------------------

    def answers(
        self, customer_ids: Sequence[str], recs: Recommendations, presenter: Presenter | None = None
    ) -> list[dict[str, Any]]:
        """One ``{customer_id, items: [{item_id, category, subcategory, price, score, reason}],
        fallback}`` per customer (see :class:`serving.reasons.Presenter`; by default the bundle's)."""
        return (presenter or self.presenter).answers(customer_ids, recs)

    def to_frame(self, recs: Recommendations, presenter: Presenter | None = None) -> pd.DataFrame:
        """Long format: ``customer_id, rank, item_id, category, subcategory, price, score, reason,
        fallback`` (one row per item; see :meth:`serving.reasons.Presenter.frame`)."""
        return (presenter or self.presenter).frame(recs)


def _log_normalisers(
    queries: np.ndarray, vectors: np.ndarray, positions: np.ndarray, excluded: ItemLists
) -> np.ndarray:
    """(n,) log of the sum of exp(score) over each query's candidates: the allowed items
    (``vectors`` at ``positions``) but its row's ``excluded`` ones; inf where none remains."""
    logits = queries @ vectors.T  # (n, m) float32
    if len(excluded.indices):
        column = np.minimum(np.searchsorted(positions, excluded.indices), len(positions) - 1)
        hit = positions[column] == excluded.indices
        rows = np.repeat(np.arange(excluded.rows), excluded.lengths())
        logits[rows[hit], column[hit]] = -np.inf
    peak = logits.max(axis=1)
    finite = np.isfinite(peak)
    peak = np.where(finite, peak, 0.0).astype(np.float32)
    logits -= peak[:, None]
    np.exp(logits, out=logits)  # in (0, 1]: float32 loses nothing the sum needs
    out = np.log(logits.sum(axis=1, dtype=np.float64)) + peak
    return np.where(finite, out, np.inf)


def _probability(scores: np.ndarray, log_norm: np.ndarray | None) -> np.ndarray | None:
    """exp(score - log normaliser), in [0, 1]; 0 where there is no item."""
    if log_norm is None:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.exp(scores.astype(np.float64) - log_norm[:, None])
    return np.clip(np.nan_to_num(p, nan=0.0, posinf=0.0), 0.0, 1.0).astype(np.float32)
