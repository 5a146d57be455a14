"""Business filters: what may be offered. The service, the batch job, the pyfunc and evaluation take
these rules from here: exclude owned items, inactive items, and category allow/deny lists.

:class:`MaskCache` remembers, for a bounded number of filter settings, the items they allow and what
a caller builds from that set (the retrieval's FAISS sub-index), so a request pays for neither
again; a client sending ever new category lists cannot make it grow without bound. A category the
catalogue does not have is an error, not an empty answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from features.errors import UserError
from serving.bundle import ItemLists

MASK_CACHE_SIZE = 64  # filter settings remembered; each sub-index holds a copy of its item vectors

T = TypeVar("T")


@dataclass
class BusinessFilters:
    """What may be offered.

    ``exclude_owned``: never offer an item the customer already bought; ``only_active``: never
    offer an item the catalogue marks inactive; ``categories``: offer only these categories;
    ``exclude_categories``: never offer these.
    """

    exclude_owned: bool = True
    only_active: bool = True
    categories: Sequence[str] | None = None
    exclude_categories: Sequence[str] | None = None

    def item_key(self) -> tuple:
        """What the item mask depends on (owned items are per customer, not part of it)."""
        return (self.only_active, tuple(self.categories or ()), tuple(self.exclude_categories or ()))

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


@dataclass(frozen=True)
class ItemMask:
    """The items some filters allow, and the key that equal masks share."""

    allowed: np.ndarray  # (n_items,) bool
    key: bytes  # the packed mask: two filter settings that allow the same items share builds


class MaskCache:
    """A bounded LRU over one catalogue: filters -> :class:`ItemMask`, and mask -> what is built
    from it (:meth:`built`). Safe to share between the event loop and worker threads."""

    def __init__(self, category: np.ndarray, active: np.ndarray, capacity: int = MASK_CACHE_SIZE) -> None:
        self.category, self.active, self.capacity = category, active, capacity
        self.known_categories = sorted({str(c) for c in category})
        self._masks: OrderedDict[Hashable, ItemMask] = OrderedDict()
        self._built: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def sizes(self) -> tuple[int, int]:
        """(filter settings, builds) held now; neither passes ``capacity``."""
        with self._lock:
            return len(self._masks), len(self._built)

    def mask(self, filters: BusinessFilters) -> ItemMask:
        """The items ``filters`` allow; an allowed category the catalogue lacks is a :class:`UserError`."""
        return self._get(self._masks, filters.item_key(), lambda: self._make_mask(filters))

    def built(self, mask: ItemMask, build: Callable[[np.ndarray], T]) -> T:
        """``build(mask.allowed)``, once per distinct mask while it stays in the cache."""
        return self._get(self._built, mask.key, lambda: build(mask.allowed))

    def _make_mask(self, filters: BusinessFilters) -> ItemMask:
        for category in filters.categories or ():  # unknown ones are never cached: checked each time
            if category not in self.known_categories:
                raise UserError(
                    f"Unknown category {category!r} in categories: expected one of"
                    f" {', '.join(self.known_categories)}."
                )
        allowed = filters.item_mask(self.category, self.active)
        return ItemMask(allowed, np.packbits(allowed).tobytes())

    def _get(self, entries: OrderedDict, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in entries:
                entries.move_to_end(key)
                return entries[key]
        value = make()  # outside the lock: a sub-index takes a while to build
        with self._lock:
            entries[key] = value
            entries.move_to_end(key)
            while len(entries) > self.capacity:
                entries.popitem(last=False)
        return value


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
