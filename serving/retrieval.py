"""Recommendation at serving time: the exported two-tower bundle, a FAISS index, business filters.

Nothing here imports ``training``: the training job exports the customer tower as numpy arrays
(see :class:`RecommenderBundle`), so a serving process computes customer vectors with a few
matrix products and searches a FAISS inner-product index over the item vectors.

Customer vector (the numpy mirror of ``training.two_tower.CustomerTower``)::

    h = relu(static[c] + mean(history_table[recent items]) @ w_history)   # (n, hidden)
    u = normalise(h @ w_out + b_out)                                      # (n, dim)
    query = [u, 1]                                                        # (n, dim + 1)

``static[c]`` is the precomputed id-embedding and profile part of the first layer (row 0 is the
unknown-customer bucket); item vectors are ``[normalise(v) / temperature, bias]`` so that the
inner product is the model's logit. The recent-items mean is computed at request time, so a fresh
purchase changes the recommendations without retraining.

Two optional parts, written by training when it fits them:

- ``customer_offset[c]`` is added to ``u``: each known customer's refinement, the maximum a
  posteriori query given the frozen item tower and the customer's own interactions;
- ``intent`` (:class:`CategoryIntent`) predicts in which categories the customer will buy next
  (from profile and category-state features and the categories of the newest recent purchases).
  The score becomes ``log P(buys in category) + log softmax of the logits within the category``:
  the towers rank items inside a category, the intent weighs the categories. The query then
  carries one more column per category (``log P - logsumexp of the category's logits``) and each
  item vector a one-hot of its category, so the search stays one inner product.

Business filters (:class:`BusinessFilters`) live here once and serve the CLI, the pyfunc and the
BentoML service: exclude owned items, inactive items, and category allow/deny lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

try:  # the pyfunc base class; serving always has mlflow, but the numpy core does not need it
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object  # type: ignore[misc,assignment]

from features.errors import UserError

BUNDLE_ARRAYS = "bundle.npz"
BUNDLE_ITEMS = "items.parquet"
BUNDLE_META = "meta.json"
CHUNK = 8192  # customers per search block: bounds memory at CHUNK x candidates


# ---------------------------------------------------------------------------------------------
# ragged item lists (owned, recent) as CSR arrays of item positions


@dataclass
class ItemLists:
    """One list of item positions per row: ``indices[indptr[r]:indptr[r + 1]]``."""

    indptr: np.ndarray  # (rows + 1,) int64
    indices: np.ndarray  # (nnz,) int64

    @classmethod
    def empty(cls, rows: int) -> ItemLists:
        return cls(np.zeros(rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    @classmethod
    def from_lists(cls, lists: Sequence[Iterable[int]]) -> ItemLists:
        arrays = [np.asarray(list(x), dtype=np.int64) for x in lists]
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        return cls(indptr, indices.astype(np.int64))

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def take(self, rows: np.ndarray) -> ItemLists:
        """The lists of ``rows`` (row -1 gives an empty list), vectorised."""
        rows = np.asarray(rows, dtype=np.int64)
        safe = np.where(rows >= 0, rows, 0)
        lengths = np.where(rows >= 0, self.indptr[safe + 1] - self.indptr[safe], 0)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        starts = np.repeat(self.indptr[safe] - indptr[:-1], lengths)
        indices = self.indices[np.arange(indptr[-1], dtype=np.int64) + starts]
        return ItemLists(indptr, indices)

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.indptr[r] : self.indptr[r + 1]]


# ---------------------------------------------------------------------------------------------
# business filters


@dataclass
class BusinessFilters:
    """What may be offered. The one place serving, the CLI and evaluation take these rules from.

    ``exclude_owned``: never offer an item the customer already bought; ``only_active``: never
    offer an item the catalogue marks inactive; ``categories``: offer only these categories;
    ``exclude_categories``: never offer these.
    """

    exclude_owned: bool = True
    only_active: bool = True
    categories: Sequence[str] | None = None
    exclude_categories: Sequence[str] | None = None

    def item_mask(self, category: np.ndarray, active: np.ndarray) -> np.ndarray:
        """(n_items,) bool: items these filters allow for every customer."""
        mask = np.ones(len(category), dtype=bool)
        if self.only_active:
            mask &= active.astype(bool)
        if self.categories:
            mask &= np.isin(category, list(self.categories))
        if self.exclude_categories:
            mask &= ~np.isin(category, list(self.exclude_categories))
        return mask


def drop_excluded(
    candidates: np.ndarray, excluded: ItemLists, n_items: int, k: int, scores: np.ndarray | None = None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Keep, per row, the first ``k`` candidates not in that row's excluded list (-1 pads).

    With ``scores`` (n, m) beside the candidates, returns (kept items, their scores; -inf pads).

    ``candidates`` (n, m) holds item positions best first (-1 for none); ``excluded`` has n rows.
    Vectorised: (row, item) pairs are coded as ``row * n_items + item`` and looked up in the
    sorted codes of the excluded pairs.
    """
    n, m = candidates.shape
    valid = candidates >= 0
    if len(excluded.indices):
        rows = np.repeat(np.arange(n, dtype=np.int64), excluded.lengths())
        codes = np.sort(rows * n_items + excluded.indices)
        cand_codes = np.arange(n, dtype=np.int64)[:, None] * n_items + np.where(valid, candidates, 0)
        pos = np.searchsorted(codes, cand_codes)
        hit = codes[np.minimum(pos, len(codes) - 1)] == cand_codes
        valid &= ~hit
    order = np.argsort(~valid, axis=1, kind="stable")[:, :k]  # valid candidates first, in rank order
    kept = np.take_along_axis(candidates, order, axis=1)
    invalid = ~np.take_along_axis(valid, order, axis=1)
    kept[invalid] = -1
    pad = ((0, 0), (0, max(0, k - kept.shape[1])))
    kept = np.pad(kept, pad, constant_values=-1)
    if scores is None:
        return kept
    kept_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    kept_scores[invalid] = -np.inf
    return kept, np.pad(kept_scores, pad, constant_values=-np.inf)


# ---------------------------------------------------------------------------------------------
# the exported model


RECENT_SLOTS = 3  # newest recent purchases whose categories the intent reads


@dataclass
class CategoryIntent:
    """The purchase-category head in numpy: ``h = relu(static[c] + onehot(newest categories) @
    w_recent)``, ``log P(buys in category) = logsigmoid(h @ w_out + b_out)``."""

    categories: np.ndarray  # (n_categories,) str; item vectors end with a one-hot in this order
    static: np.ndarray  # (n_customers + 1, hidden) float32; row 0 = unknown customer
    w_recent: np.ndarray  # (RECENT_SLOTS * n_categories, hidden)
    w_out: np.ndarray  # (hidden, n_categories)
    b_out: np.ndarray  # (n_categories,)

    ARRAYS = ("static", "w_recent", "w_out", "b_out")

    def log_probability(self, rows: np.ndarray, recent_categories: np.ndarray) -> np.ndarray:
        """(n, n_categories) log P(buys in each category); ``recent_categories`` (n, RECENT_SLOTS)
        holds category codes of the newest recent purchases, -1 where there are fewer."""
        n, n_cat = len(rows), len(self.categories)
        onehot = np.zeros((n, RECENT_SLOTS * n_cat), dtype=np.float32)
        row, slot = np.nonzero(recent_categories >= 0)
        onehot[row, slot * n_cat + recent_categories[row, slot]] = 1.0
        hidden = np.maximum(self.static[np.asarray(rows) + 1] + onehot @ self.w_recent, 0.0)
        logits = hidden @ self.w_out + self.b_out
        return -np.logaddexp(0.0, -logits)  # logsigmoid, stable


@dataclass
class RecommenderBundle:
    """Everything serving needs, as arrays; written by training, read with :meth:`load`."""

    item_ids: np.ndarray  # (n_items,) str
    item_category: np.ndarray  # (n_items,) str
    item_active: np.ndarray  # (n_items,) bool
    item_vectors: np.ndarray  # (n_items, dim + 1) float32: [normalised v / temperature, bias]
    popularity: np.ndarray  # (n_items,) float: share of training purchases (fallback ranking)
    customer_ids: np.ndarray  # (n_customers,) str; position p has tower row p + 1
    customer_static: np.ndarray  # (n_customers + 1, hidden) float32; row 0 = unknown customer
    history_table: np.ndarray  # (n_items + 1, dim_history) float32; row 0 = padding
    w_history: np.ndarray  # (dim_history, hidden)
    w_out: np.ndarray  # (hidden, dim)
    b_out: np.ndarray  # (dim,)
    owned: ItemLists  # per customer position: items bought in training data
    recent: ItemLists  # per customer position: latest purchases, newest first
    meta: dict = field(default_factory=dict)
    customer_offset: np.ndarray | None = None  # (n_customers + 1, dim) refinement; row 0 zeros
    intent: CategoryIntent | None = None  # with it, item_vectors end with a category one-hot

    @property
    def dim(self) -> int:
        return self.w_out.shape[1]

    def towers_only(self) -> RecommenderBundle:
        """The same bundle without the refinement and the category intent (for comparison)."""
        return replace(
            self, item_vectors=self.item_vectors[:, : self.dim + 1], customer_offset=None, intent=None
        )

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {
            k: getattr(self, k)
            for k in (
                "item_vectors",
                "popularity",
                "customer_static",
                "history_table",
                "w_history",
                "w_out",
                "b_out",
            )
        }
        arrays["customer_ids"] = self.customer_ids.astype(str)
        if self.customer_offset is not None:
            arrays["customer_offset"] = self.customer_offset
        if self.intent is not None:
            arrays |= {f"intent_{k}": getattr(self.intent, k) for k in CategoryIntent.ARRAYS}
            arrays["intent_categories"] = self.intent.categories.astype(str)
        for name in ("owned", "recent"):
            lists: ItemLists = getattr(self, name)
            arrays[f"{name}_indptr"], arrays[f"{name}_indices"] = lists.indptr, lists.indices
        np.savez(folder / BUNDLE_ARRAYS, **arrays)
        pd.DataFrame(
            {"item_id": self.item_ids, "category": self.item_category, "active": self.item_active}
        ).to_parquet(folder / BUNDLE_ITEMS, index=False)
        (folder / BUNDLE_META).write_text(json.dumps(self.meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> RecommenderBundle:
        folder = Path(folder)
        if not (folder / BUNDLE_ARRAYS).is_file():
            raise UserError(f"{folder} holds no recommender bundle: expected {BUNDLE_ARRAYS} there.")
        z = np.load(folder / BUNDLE_ARRAYS, allow_pickle=False)
        items = pd.read_parquet(folder / BUNDLE_ITEMS)
        intent = None
        if "intent_categories" in z:  # bundles written before the intent head have none
            intent = CategoryIntent(
                z["intent_categories"].astype(object), *(z[f"intent_{k}"] for k in CategoryIntent.ARRAYS)
            )
        return cls(
            item_ids=items["item_id"].to_numpy(dtype=object),
            item_category=items["category"].fillna("").to_numpy(dtype=object),
            item_active=items["active"].fillna(True).to_numpy(dtype=bool),
            item_vectors=z["item_vectors"],
            popularity=z["popularity"],
            customer_ids=z["customer_ids"].astype(object),
            customer_static=z["customer_static"],
            history_table=z["history_table"],
            w_history=z["w_history"],
            w_out=z["w_out"],
            b_out=z["b_out"],
            owned=ItemLists(z["owned_indptr"], z["owned_indices"]),
            recent=ItemLists(z["recent_indptr"], z["recent_indices"]),
            meta=json.loads((folder / BUNDLE_META).read_text()),
            customer_offset=z["customer_offset"] if "customer_offset" in z else None,
            intent=intent,
        )


@dataclass
class Recommendations:
    """Top-k per customer: item positions (-1 pads), scores, and who got the popularity fallback."""

    customer_ids: np.ndarray  # (n,)
    items: np.ndarray  # (n, k) int, -1 where fewer than k items qualify
    scores: np.ndarray  # (n, k) float32
    fallback: np.ndarray  # (n,) bool


class Retrieval:
    """The served recommender: customer vectors in numpy, a FAISS index over item vectors.

    ``recommend_arrays`` is the vectorised path (batch CLI, ``/recommend_batch``);
    ``recommend`` returns plain dicts for the service.
    """

    def __init__(self, bundle: RecommenderBundle) -> None:
        import faiss

        self.bundle = bundle
        self.n_items = len(bundle.item_ids)
        self.item_position = {item: i for i, item in enumerate(bundle.item_ids)}
        self.customer_position = pd.Index(bundle.customer_ids)
        self._faiss = faiss
        self._indexes: dict[bytes, tuple[Any, np.ndarray]] = {}
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
        return cls(RecommenderBundle.load(folder))

    # --- lookups -----------------------------------------------------------------------------

    def customer_rows(self, customer_ids: Sequence[str]) -> np.ndarray:
        """Position of each customer in the bundle, -1 when unknown."""
        return self.customer_position.get_indexer(pd.Index(np.asarray(customer_ids, dtype=object)))

    def item_positions(self, item_ids: Iterable[str]) -> np.ndarray:
        """Positions of known items (unknown ids are dropped: the model cannot use them)."""
        pos = [self.item_position.get(i, -1) for i in item_ids]
        return np.asarray([p for p in pos if p >= 0], dtype=np.int64)

    def lists_from_ids(self, lists: Sequence[Iterable[str] | None]) -> ItemLists:
        return ItemLists.from_lists([self.item_positions(x if x is not None else ()) for x in lists])

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

    def _index(self, mask: np.ndarray) -> tuple[Any, np.ndarray]:
        """A flat inner-product index over the allowed items (cached per item mask)."""
        key = np.packbits(mask).tobytes()
        if key not in self._indexes:
            positions = np.flatnonzero(mask)
            index = self._faiss.IndexFlatIP(self.bundle.item_vectors.shape[1])
            index.add(np.ascontiguousarray(self.bundle.item_vectors[positions], dtype=np.float32))
            self._indexes = {key: (index, positions)} | dict(list(self._indexes.items())[:7])
        return self._indexes[key]

    def search(
        self, queries: np.ndarray, k: int, excluded: ItemLists, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` allowed items per query, skipping each row's excluded items; scores beside."""
        index, positions = self._index(mask)
        n = len(queries)
        items = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if len(positions) == 0:
            return items, scores
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            block_excl = excluded.take(np.arange(start, stop))
            # enough candidates that k survive the exclusions
            m = int(min(len(positions), k + (block_excl.lengths().max(initial=0))))
            found_scores, found = index.search(queries[start:stop], m)
            cand = np.where(found >= 0, positions[np.maximum(found, 0)], -1)
            items[start:stop], scores[start:stop] = drop_excluded(
                cand, block_excl, self.n_items, k, found_scores
            )
        return items, scores

    def popular(self, k: int, excluded: ItemLists, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The popularity fallback: most bought allowed items, minus each row's excluded items."""
        order = self._popular_order[mask[self._popular_order]]
        m = int(min(len(order), k + excluded.lengths().max(initial=0)))
        cand = np.broadcast_to(order[:m], (excluded.rows, m)).copy()
        kept = drop_excluded(cand, excluded, self.n_items, k)
        scores = np.where(kept >= 0, self.bundle.popularity[np.maximum(kept, 0)], -np.inf)
        return kept, scores.astype(np.float32)

    # --- the serving paths -------------------------------------------------------------------------

    def recommend_arrays(
        self,
        customer_ids: Sequence[str],
        k: int = 10,
        filters: BusinessFilters | None = None,
        recent_items: Sequence[Iterable[str] | None] | None = None,
        owned_items: Sequence[Iterable[str] | None] | None = None,
    ) -> Recommendations:
        """Vectorised top-``k`` for a batch of customers.

        ``recent_items`` / ``owned_items`` (one list per customer, or None to use the bundle's)
        let the caller pass fresher state, e.g. from the online snapshot or a purchase just made.
        An unknown customer with no recent items gets the popularity ranking (``fallback``).
        """
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}.")
        filters = filters or BusinessFilters()
        b = self.bundle
        rows = self.customer_rows(customer_ids)
        recent = b.recent.take(rows) if recent_items is None else self.lists_from_ids(recent_items)
        if owned_items is not None:
            owned = self.lists_from_ids(owned_items)
        else:
            owned = b.owned.take(rows)
        # what a customer has just bought counts as owned, even before the snapshot knows it
        if recent_items is not None:
            owned = ItemLists.from_lists([np.union1d(owned.row(r), recent.row(r)) for r in range(len(rows))])
        excluded = owned if filters.exclude_owned else ItemLists.empty(len(rows))
        mask = filters.item_mask(b.item_category, b.item_active)
        fallback = (rows < 0) & (recent.lengths() == 0)
        items = np.full((len(rows), k), -1, dtype=np.int64)
        scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
        model_rows = np.flatnonzero(~fallback)
        for start in range(0, len(model_rows), 8 * CHUNK):  # bounded memory for the queries
            block = model_rows[start : start + 8 * CHUNK]
            queries = self.customer_vectors(rows[block], recent.take(block))
            items[block], scores[block] = self.search(queries, k, excluded.take(block), mask)
        pop_rows = np.flatnonzero(fallback)
        if len(pop_rows):
            items[pop_rows], scores[pop_rows] = self.popular(k, excluded.take(pop_rows), mask)
        return Recommendations(np.asarray(customer_ids, dtype=object), items, scores, fallback)

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
        """Top-``k`` per customer as ``{customer_id, items: [{item_id, category, score}], fallback}``.

        ``recent_items`` / ``owned_items`` map customer ids to fresher lists (missing customers
        use the model's own); inactive items are never offered.
        """
        filters = BusinessFilters(exclude_owned, True, categories, exclude_categories)
        recent = self.lists_with_overrides(customer_ids, recent_items, self.bundle.recent)
        owned = self.lists_with_overrides(customer_ids, owned_items, self.bundle.owned)
        recs = self.recommend_arrays(customer_ids, k, filters, recent, owned)
        return [
            {
                "customer_id": cid,
                "items": [
                    {
                        "item_id": str(self.bundle.item_ids[j]),
                        "category": str(self.bundle.item_category[j]),
                        "score": float(s),
                    }
                    for j, s in zip(recs.items[i], recs.scores[i], strict=True)
                    if j >= 0
                ],
                "fallback": bool(recs.fallback[i]),
            }
            for i, cid in enumerate(customer_ids)
        ]

    def lists_with_overrides(
        self, customer_ids: Sequence[str], overrides: Mapping[str, Iterable[str]] | None, base: ItemLists
    ) -> list[Iterable[str]] | None:
        """Per customer: the override list when given, else the bundle's list (empty if unknown)."""
        if overrides is None:
            return None
        rows = self.customer_rows(customer_ids)
        ids = self.bundle.item_ids
        return [
            overrides[c] if c in overrides else (ids[base.row(r)] if r >= 0 else ())
            for c, r in zip(customer_ids, rows, strict=True)
        ]

    def to_frame(self, recs: Recommendations) -> pd.DataFrame:
        """Long format: ``customer_id, rank, item_id, category, score, fallback`` (one row per item)."""
        n, k = recs.items.shape
        keep = recs.items.reshape(-1) >= 0
        flat = recs.items.reshape(-1)[keep]
        return pd.DataFrame(
            {
                "customer_id": np.repeat(recs.customer_ids, k)[keep],
                "rank": np.tile(np.arange(1, k + 1), n)[keep],
                "item_id": self.bundle.item_ids[flat],
                "category": self.bundle.item_category[flat],
                "score": recs.scores.reshape(-1)[keep].astype(float),
                "fallback": np.repeat(recs.fallback, k)[keep],
            }
        )


# ---------------------------------------------------------------------------------------------
# the MLflow pyfunc


def _as_list(value: Any) -> list[str] | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]


class RecommenderModel(PythonModel):
    """MLflow pyfunc: a batch of customers (``customer_id``, optional ``recent_items``) -> top-k.

    ``params={"k": 10}`` sets the list length. Output is long format (see
    :meth:`Retrieval.to_frame`). The service calls :meth:`recommend` through
    ``unwrap_python_model()`` for the fast path with business filters.
    """

    def __init__(self) -> None:
        self.retrieval: Retrieval | None = None

    def load_context(self, context: Any) -> None:
        self.retrieval = Retrieval.load(context.artifacts["bundle"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        k = int((params or {}).get("k", 10))
        frame = pd.DataFrame(model_input)
        if "customer_id" not in frame:
            raise UserError("The recommender input needs a customer_id column.")
        ids = frame["customer_id"].astype(str).tolist()
        recent = None
        if "recent_items" in frame:
            given = {
                c: r for c, r in zip(ids, map(_as_list, frame["recent_items"]), strict=True) if r
            }  # an empty list means "nothing new": the model's own recent items are used
            recent = (
                self.retrieval.lists_with_overrides(ids, given, self.retrieval.bundle.recent)
                if given
                else None
            )
        recs = self.retrieval.recommend_arrays(ids, k, recent_items=recent)
        return self.retrieval.to_frame(recs)

    def recommend(self, customer_ids: Sequence[str], k: int = 10, **kwargs: Any) -> list[dict[str, Any]]:
        """The fast path for the service; see :meth:`Retrieval.recommend`."""
        return self.retrieval.recommend(list(customer_ids), k, **kwargs)


# ---------------------------------------------------------------------------------------------
# batch recommendations for an audience (``crm recommend``)


class BatchRecommendConfig(BaseModel):
    """What ``crm recommend`` does."""

    model_config = ConfigDict(extra="forbid")

    customers: Path
    out: Path
    k: int = 10
    model_uri: str = "models:/recommender@champion"
    online_snapshot: Path | None = None
    categories: list[str] | None = None
    exclude_categories: list[str] | None = None


@dataclass
class BatchRecommendResult:
    out: Path
    customers: int
    rows: int
    fallback: int
    seconds: float


def read_audience(path: Path) -> list[str]:
    """Customer ids from a CSV or Parquet file with a ``customer_id`` column."""
    if not path.is_file():
        raise UserError(f"Audience file {path} does not exist: expected a CSV or Parquet file.")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file
        raise UserError(f"Audience file {path} could not be read as CSV or Parquet ({exc}).") from None
    if "customer_id" not in frame.columns:
        raise UserError(f"Audience file {path} has no customer_id column (found {', '.join(frame.columns)}).")
    return frame["customer_id"].dropna().astype(str).drop_duplicates().tolist()


def load_served_model(model_uri: str) -> RecommenderModel:
    """The recommender pyfunc behind ``model_uri`` (an alias URI, a version URI or a run URI)."""
    from mlflow.exceptions import MlflowException

    import mlflow
    from crm import settings

    mlflow.set_tracking_uri(settings.tracking_uri())
    mlflow.set_registry_uri(settings.tracking_uri())
    try:
        model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except MlflowException as exc:
        raise UserError(
            f"No recommender at {model_uri} ({str(exc).splitlines()[0]}): train one with"
            " `crm train recommender --register` and `crm promote recommender`, or pass --model-uri."
        ) from None
    if not isinstance(model, RecommenderModel):
        raise UserError(f"The model at {model_uri} is not a recommender.")
    return model


def batch_recommend(cfg: BatchRecommendConfig) -> BatchRecommendResult:
    """Top-k for every customer of an audience file, vectorised, written as CSV or Parquet."""
    import time

    start = time.perf_counter()
    if cfg.out.suffix not in (".csv", ".parquet"):
        raise UserError(f"Output {cfg.out} must end in .csv or .parquet.")
    if not 1 <= cfg.k <= 1000:
        raise UserError(f"k must lie between 1 and 1000, got {cfg.k}.")
    ids = read_audience(cfg.customers)
    retrieval = load_served_model(cfg.model_uri).retrieval
    recent = owned = None
    if cfg.online_snapshot:  # fresher owned and recent items than the model was trained with
        from features.online import load_online_snapshot

        snap = load_online_snapshot(cfg.online_snapshot)
        recent = [snap.recent_items(c) for c in ids]
        owned = [snap.owned_items(c) for c in ids]
    filters = BusinessFilters(True, True, cfg.categories, cfg.exclude_categories)
    recs = retrieval.recommend_arrays(ids, cfg.k, filters, recent, owned)
    frame = retrieval.to_frame(recs)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    if cfg.out.suffix == ".parquet":
        frame.to_parquet(cfg.out, index=False)
    else:
        frame.to_csv(cfg.out, index=False)
    return BatchRecommendResult(
        cfg.out, len(ids), len(frame), int(recs.fallback.sum()), time.perf_counter() - start
    )
