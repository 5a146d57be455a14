"""The exported recommender: the two-tower model as numpy arrays, written by training.

Nothing here imports ``training``: the training job exports the customer tower as arrays (see
:class:`RecommenderBundle`), so a serving process computes customer vectors with a few matrix
products (:mod:`serving.retrieval`) and needs no deep-learning library.

Two optional parts, written by training when it fits them:

- ``customer_offset[c]``: each known customer's refinement of the query, the maximum a posteriori
  query given the frozen item tower and the customer's own interactions;
- ``intent`` (:class:`CategoryIntent`): in which categories the customer will buy next, from
  profile and category-state features and the categories of the newest recent purchases. With it
  the item vectors end with a one-hot of the item's category.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import UserError

BUNDLE_ARRAYS = "bundle.npz"
BUNDLE_ITEMS = "items.parquet"
BUNDLE_META = "meta.json"
RECENT_SLOTS = 3  # newest recent purchases whose categories the intent reads


@dataclass
class ItemLists:
    """One list of item positions per row (owned or recent items): ``indices[indptr[r]:indptr[r + 1]]``."""

    indptr: np.ndarray  # (rows + 1,) int64
    indices: np.ndarray  # (nnz,) int64

    @classmethod
    def empty(cls, rows: int) -> ItemLists:
        """``rows`` empty lists."""
        return cls(np.zeros(rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    @classmethod
    def from_lists(cls, lists: Sequence[Iterable[int]]) -> ItemLists:
        """One row per list of item positions."""
        arrays = [np.asarray(list(x), dtype=np.int64) for x in lists]
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        return cls(indptr, indices.astype(np.int64))

    @property
    def rows(self) -> int:
        """How many lists."""
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        """(rows,) the length of each list."""
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

    def slice(self, start: int, stop: int) -> ItemLists:
        """The lists of rows ``start`` to ``stop - 1``."""
        indptr = self.indptr[start : stop + 1]
        return ItemLists(indptr - indptr[0], self.indices[indptr[0] : indptr[-1]])

    def union(self, other: ItemLists) -> ItemLists:
        """Per row, the sorted distinct items of both lists (vectorised ``np.union1d`` per row)."""
        if self.rows == 1:  # one customer (a request): numpy's own, without the coding's fixed cost
            merged = np.union1d(self.indices, other.indices).astype(np.int64)
            return ItemLists(np.array([0, len(merged)], dtype=np.int64), merged)
        rows = np.arange(self.rows, dtype=np.int64)
        width = int(max(self.indices.max(initial=-1), other.indices.max(initial=-1))) + 1
        codes = np.unique(
            np.concatenate(
                [
                    np.repeat(rows, self.lengths()) * width + self.indices,
                    np.repeat(rows, other.lengths()) * width + other.indices,
                ]
            )
        )
        counts = np.bincount(codes // max(width, 1), minlength=self.rows)
        return ItemLists(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), codes % max(width, 1))

    def row(self, r: int) -> np.ndarray:
        """The item positions of row ``r``."""
        return self.indices[self.indptr[r] : self.indptr[r + 1]]


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


TOWER_ARRAYS = (
    "item_vectors",
    "popularity",
    "customer_static",
    "history_table",
    "w_history",
    "w_out",
    "b_out",
)


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
        """The towers' vector size (item vectors have one more column, the bias, and the intent's)."""
        return self.w_out.shape[1]

    def towers_only(self) -> RecommenderBundle:
        """The same bundle without the refinement and the category intent (for comparison)."""
        return replace(
            self, item_vectors=self.item_vectors[:, : self.dim + 1], customer_offset=None, intent=None
        )

    def save(self, folder: str | Path) -> Path:
        """Write the arrays, the item table and the metadata into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k) for k in TOWER_ARRAYS}
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
        """Read a bundle that :meth:`save` wrote."""
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
            **{k: z[k] for k in TOWER_ARRAYS},
            customer_ids=z["customer_ids"].astype(object),
            owned=ItemLists(z["owned_indptr"], z["owned_indices"]),
            recent=ItemLists(z["recent_indptr"], z["recent_indices"]),
            meta=json.loads((folder / BUNDLE_META).read_text()),
            customer_offset=z["customer_offset"] if "customer_offset" in z else None,
            intent=intent,
        )
