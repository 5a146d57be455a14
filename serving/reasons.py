"""How a recommended item reads: its catalogue fields, a comparable score and a reason that is true.

Every answer of the recommender (``/recommend``, ``/recommend_batch``, ``crm recommend``, the
pyfunc) goes through one :class:`Presenter`, which knows, by item position of the bundle:

- the catalogue fields (category, subcategory, price rounded to cents) of the online snapshot's
  item table, where it has the item (the bundle alone carries no subcategory nor price: null);
- the popularity facts the reasons may state (precomputed once, when the state loads);
- per snapshot customer, the newest purchase in each category (from ``owned.parquet``), which the
  live overlay's purchases since then complete at request time.

The score is :attr:`serving.retrieval.Recommendations.probability`, rounded here. The reasons are
data: :data:`REASONS` holds each reason's text and the condition under which it is shown, and
:data:`GOES_WITH`, :data:`DEVICE_NOUN` and :data:`CATEGORY_PLURAL` the words and product relations
they use. The first reason that holds is shown, in the order of :data:`REASONS`. A reason that
names a device ("the phone", "phone owners") is only shown to a customer who owns one.

Per request the work is O(k): a dictionary lookup for the customer, then a few set and tuple
lookups per item.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from features.online import OnlineSnapshot
    from serving.bundle import RecommenderBundle
    from serving.live import CustomerLive, LiveOverlay
    from serving.retrieval import Recommendations

SCORE_DECIMALS = 6  # of the score in an answer
TOP_N = 10  # "popular": fewer than TOP_N items (of the group compared) have more buyers
MIN_BUYERS = 3  # and at least this many customers bought it
MONTH_DAYS = 30  # "this month": the 30 days before the snapshot's as-of
UNKNOWN_DATE = -math.inf  # a purchase whose date is not known (the model's training purchases)


@dataclass(frozen=True)
class Reason:
    """One reason a recommended item may carry: its text, and when it is true (what the tests check)."""

    code: str
    template: str
    true_when: str


# In the order they are tried: the first that holds is shown.
REASONS: dict[str, Reason] = {
    r.code: r
    for r in (
        Reason(
            "goes_with",
            "goes with the {device} bought {when}",
            "GOES_WITH relates the item's category and subcategory to the device category, the"
            " customer owns an item of it, and the newest of those was bought {when} before the"
            " answer's clock (the live overlay's, else the snapshot's as-of)",
        ),
        Reason(
            "goes_with_yours",
            "goes with your {device}",
            "as goes_with, where the purchase date is not known (the model's training purchases)",
        ),
        Reason(
            "device_owners",
            "popular with {device} owners",
            "the customer owns a device of that category; among the customers who own one, fewer"
            f" than {TOP_N} items outside it have more buyers, at least {MIN_BUYERS} of them bought"
            " it, and they buy it at a higher rate than the other customers",
        ),
        Reason(
            "popular_month",
            "popular this month",
            f"fewer than {TOP_N} items had more buyers in the {MONTH_DAYS} days before the"
            f" snapshot, and at least {MIN_BUYERS} bought it then",
        ),
        Reason(
            "popular_in_category_month",
            "popular in {plural} this month",
            "as popular_month, among the items of its category",
        ),
        Reason(
            "most_bought",
            "one of the most bought items",
            f"without a snapshot: fewer than {TOP_N} items have a larger share of the training"
            " purchases, and its share is above zero",
        ),
        Reason(
            "popular_in_category",
            "popular in {plural}",
            "as most_bought, among the items of its category",
        ),
        Reason(
            "history",
            "picked for your purchase history",
            "the model answered (no fallback) and the customer has bought something",
        ),
        Reason(
            "profile",
            "picked for customers like you",
            "the model answered (no fallback) from the customer's profile: no purchases known",
        ),
        Reason(
            "bought_before",
            "bought by other customers",
            "a popularity fallback, and someone bought the item (snapshot or training purchases)",
        ),
        Reason(
            "range",
            "from our {plural}",
            "a popularity fallback for an item nobody bought yet",
        ),
    )
}

# Which devices an item goes with, by (category, subcategory), most likely first; (category, None)
# holds for the category's other subcategories. The simulator's cross-sell: a fresh phone brings
# accessories and a first wearable.
GOES_WITH: dict[tuple[str, str | None], tuple[str, ...]] = {
    ("accessory", "case"): ("phone",),
    ("accessory", "screen_protector"): ("phone",),
    ("accessory", "charger"): ("phone", "laptop", "wearable"),
    ("accessory", "cable"): ("phone", "laptop", "tv"),
    ("accessory", "power_bank"): ("phone", "laptop"),
    ("accessory", None): ("phone",),
    ("wearable", None): ("phone",),  # watches, bands and earbuds pair with a phone
    ("other", "service_plan"): ("phone", "laptop", "tv"),
}
# The devices a reason may name, as it names them.
DEVICE_NOUN = {
    "phone": "phone",
    "smart_home": "smart-home device",
    "wearable": "wearable",
    "tv": "TV",
    "laptop": "laptop",
}
CATEGORY_PLURAL = {
    "phone": "phones",
    "smart_home": "smart-home devices",
    "wearable": "wearables",
    "tv": "TVs",
    "laptop": "laptops",
    "accessory": "accessories",
    "other": "gift cards, plans and bundles",
}

Explained = tuple[str, dict[str, str]]  # a reason's code and the words that fill its template
Summary = dict[int, float]  # category code -> day of the newest purchase in it (UNKNOWN_DATE: unknown)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)  # text, name, text, name, ..., text
    return re.compile(
        "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts)) + "$"
    )


_PATTERNS = {code: _pattern(r.template) for code, r in REASONS.items()}


def parse(text: str) -> Explained | None:
    """The reason code and words of a reason's text (the inverse of the templates), or None."""
    for code, pattern in _PATTERNS.items():
        found = pattern.match(text)
        if found:
            return code, found.groupdict()
    return None


def plural(category: str) -> str:
    return CATEGORY_PLURAL.get(category) or f"{category.replace('_', ' ')} items"


def ago(days: float) -> str:
    """How long ago, in words: today, yesterday, 3 days ago, 5 weeks ago, 2 months ago, 3 years ago."""
    d = max(int(days), 0)
    if d < 1:
        return "today"
    if d < 2:
        return "yesterday"
    if d < 14:
        return f"{d} days ago"
    if d < 60:
        return f"{d // 7} weeks ago"
    if d < 730:
        return f"{d // 30} months ago"
    return f"{d // 365} years ago"


def day_number(when: datetime | str | pd.Timestamp) -> float:
    """Days since 1970-01-01 (UTC; a naive time is taken as UTC)."""
    ts = pd.Timestamp(when)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.value / 86_400e9


def _day_numbers(values: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(values)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.astype("datetime64[ns]").to_numpy().astype(np.int64) / 86_400e9


def _top(counts: np.ndarray, eligible: np.ndarray, minimum: float) -> np.ndarray:
    """(n,) bool: eligible items with at least ``minimum`` and fewer than TOP_N eligible items above."""
    values = np.where(eligible, counts, -np.inf)
    ranked = np.sort(values)[::-1]
    threshold = ranked[min(TOP_N, len(ranked)) - 1] if len(ranked) else np.inf
    # fewer than TOP_N above <=> at least the TOP_N-th largest value
    return eligible & (values >= threshold) & (values >= minimum) & (values > 0)


def _top_per_group(counts: np.ndarray, groups: np.ndarray, minimum: float) -> np.ndarray:
    out = np.zeros(len(counts), dtype=bool)
    for g in np.unique(groups):
        out |= _top(counts, groups == g, minimum)
    return out


class Presenter:
    """Catalogue fields, rounded scores and reasons for the items of one bundle (by position).

    Build it with :meth:`from_bundle` (no catalogue beyond the bundle's; reasons from the
    training purchases) or :meth:`from_snapshot` (the online snapshot's catalogue, purchases and
    purchase dates).
    """

    def __init__(
        self,
        bundle: RecommenderBundle,
        categories: Sequence[str],
        subcategory: Sequence[str | None],
        price: Sequence[float | None],
        popular: Sequence[Explained | None],
        bought: np.ndarray,
        owners_top: Mapping[int, Iterable[int]] | None = None,
        item_code: Mapping[str, int] | None = None,
        row: dict[str, int] | None = None,
        newest: np.ndarray | None = None,
        as_of: float | None = None,
    ) -> None:
        self.bundle = bundle
        self.categories = list(categories)
        code_of = {c: i for i, c in enumerate(self.categories)}
        item_category = [str(c) for c in bundle.item_category]
        self.code = [code_of[c] for c in item_category]
        self.base = [
            {"item_id": str(i), "category": c, "subcategory": s, "price": p}
            for i, c, s, p in zip(bundle.item_ids, item_category, subcategory, price, strict=True)
        ]
        devices = {code_of[c]: c for c in DEVICE_NOUN if c in code_of}
        self.noun = {code: DEVICE_NOUN[c] for code, c in devices.items()}
        self.goes_with = [
            tuple(code_of[d] for d in GOES_WITH.get((c, s), GOES_WITH.get((c, None), ())) if d in code_of)
            for c, s in zip(item_category, subcategory, strict=True)
        ]
        self.popular = list(popular)
        self.fallback_only: list[Explained] = [
            ("bought_before", {}) if b else ("range", {"plural": plural(c)})
            for b, c in zip(bought.tolist(), item_category, strict=True)
        ]
        self.owners_top = {c: frozenset(items) for c, items in (owners_top or {}).items()}
        # item id -> category code, for the live overlay's purchases (ids, maybe outside the bundle)
        self.item_code = (
            dict(item_code)
            if item_code is not None
            else {str(i): c for i, c in zip(bundle.item_ids, self.code, strict=True)}
        )
        self.row = row if row is not None else {}
        self.newest = newest
        self.as_of = as_of
        self._texts: dict[tuple, str] = {}
        # per item: whether a device reason may apply, and the text of each device-free variant
        in_owners_top = set().union(*self.owners_top.values()) if self.owners_top else set()
        self.device_sensitive = [bool(g) or j in in_owners_top for j, g in enumerate(self.goes_with)]
        self.item_text = [
            tuple(self._text(self.item_reason(j, v)) for v in range(3)) for j in range(len(self.base))
        ]

    # --- building -------------------------------------------------------------------------------

    @classmethod
    def from_bundle(cls, bundle: RecommenderBundle) -> Presenter:
        """Reasons from the training purchases the bundle holds; no subcategory, price nor dates."""
        categories = sorted({str(c) for c in bundle.item_category})
        share = np.asarray(bundle.popularity, dtype=np.float64)
        cats = np.asarray([str(c) for c in bundle.item_category], dtype=object)
        overall = _top(share, np.ones(len(share), dtype=bool), 0.0)
        in_category = _top_per_group(share, cats, 0.0)
        popular: list[Explained | None] = [
            ("most_bought", {}) if o else ("popular_in_category", {"plural": plural(c)}) if g else None
            for o, g, c in zip(overall.tolist(), in_category.tolist(), cats, strict=True)
        ]
        n = len(share)
        return cls(bundle, categories, [None] * n, [None] * n, popular, share > 0)

    @classmethod
    def from_snapshot(
        cls, bundle: RecommenderBundle, snapshot: OnlineSnapshot, row: dict[str, int] | None = None
    ) -> Presenter:
        """The snapshot's catalogue, and reasons from its purchases and their dates. ``row``: the
        snapshot's customer -> row lookup when the caller has one (in the snapshot's order)."""
        n = len(bundle.item_ids)
        ids = pd.Index([str(i) for i in bundle.item_ids])
        catalogue = snapshot.items.copy()
        catalogue.index = catalogue.index.astype(str)
        catalogue = catalogue[~catalogue.index.duplicated()]
        aligned = catalogue.reindex(ids)
        subcategory = [
            None if pd.isna(s) else str(s) for s in aligned.get("subcategory", pd.Series([None] * n))
        ]
        price = [
            None if pd.isna(p) else round(float(p), 2)
            for p in pd.to_numeric(aligned.get("price", pd.Series([None] * n)), errors="coerce")
        ]
        bundle_cats = [str(c) for c in bundle.item_category]
        # an item outside the bundle (bought, not recommendable) keeps the snapshot's category
        extra_cats = catalogue["category"].dropna().astype(str) if "category" in catalogue else pd.Series()
        categories = sorted(set(bundle_cats) | set(extra_cats.tolist()))
        code_of = {c: i for i, c in enumerate(categories)}
        item_code = {i: code_of[c] for i, c in extra_cats.items()}
        item_code.update({i: code_of[c] for i, c in zip(ids, bundle_cats, strict=True)})

        customers = [str(c) for c in snapshot.snapshot.index]
        row = row if row is not None else {c: r for r, c in enumerate(customers)}
        as_of = day_number(snapshot.as_of)
        owned = _owned_with_dates(snapshot)
        owned = owned[owned["item_id"].isin(item_code.keys()) & owned["customer_id"].isin(row.keys())]
        cust = owned["customer_id"].map(row).to_numpy(dtype=np.int64)
        code = owned["item_id"].map(item_code).to_numpy(dtype=np.int64)
        day = owned["day"].to_numpy(dtype=np.float64)
        newest = np.full((len(customers), len(categories)), np.nan)  # float64: to the second
        if len(owned):
            frame = pd.DataFrame({"r": cust, "c": code, "d": day}).groupby(["r", "c"])["d"].max()
            r, c = frame.index.get_level_values(0), frame.index.get_level_values(1)
            newest[r, c] = frame.to_numpy(dtype=np.float64)

        # who bought what: customers x bundle items, and customers x categories
        pos = ids.get_indexer(owned["item_id"])
        in_bundle = pos >= 0
        n_cust = max(len(customers), 1)
        bought_matrix = sp.csr_matrix(
            (np.ones(int(in_bundle.sum())), (cust[in_bundle], pos[in_bundle])), shape=(n_cust, n)
        )
        bought_matrix.sum_duplicates()
        bought_matrix.data[:] = 1.0  # a customer counts once per item
        buyers = np.asarray(bought_matrix.sum(axis=0)).ravel()
        recent = owned["day"].to_numpy() >= as_of - MONTH_DAYS
        month = np.bincount(pos[in_bundle & recent], minlength=n).astype(np.float64)
        cats = np.asarray(bundle_cats, dtype=object)
        overall = _top(month, np.ones(n, dtype=bool), MIN_BUYERS)
        in_category = _top_per_group(month, cats, MIN_BUYERS)
        popular: list[Explained | None] = [
            ("popular_month", {})
            if o
            else ("popular_in_category_month", {"plural": plural(c)})
            if g
            else None
            for o, g, c in zip(overall.tolist(), in_category.tolist(), cats, strict=True)
        ]

        owners_top: dict[int, list[int]] = {}
        n_buyers = int((~np.isnan(newest)).any(axis=1).sum())
        item_codes = np.asarray([code_of[c] for c in bundle_cats], dtype=np.int64)
        for device in DEVICE_NOUN:
            if device not in code_of:
                continue
            c = code_of[device]
            owners = ~np.isnan(newest[:, c])
            n_owners = int(owners.sum())
            if n_owners == 0 or n_owners == n_buyers:
                continue
            by_owners = np.asarray(bought_matrix.T @ owners.astype(np.float64)).ravel()
            rate_owners = by_owners / n_owners
            rate_others = (buyers - by_owners) / (n_buyers - n_owners)
            outside = item_codes != c
            top = _top(by_owners, outside, MIN_BUYERS) & (rate_owners > rate_others)
            owners_top[c] = np.flatnonzero(top).tolist()
        return cls(
            bundle,
            categories,
            subcategory,
            price,
            popular,
            buyers > 0,
            owners_top,
            item_code,
            row,
            newest,
            as_of,
        )

    # --- customers ---------------------------------------------------------------------------------

    def now(self, live: LiveOverlay | None = None) -> float | None:
        """The answer's clock, in days: the live overlay's event time, else the snapshot's as-of."""
        if live is not None and live.clock is not None:
            return day_number(live.clock)
        return self.as_of

    def summary(self, customer_id: str, bundle_row: int = -1, live: CustomerLive | None = None) -> Summary:
        """The newest purchase per category of a customer, newest first: the snapshot's where it
        knows the customer, else the bundle's (dates unknown); with the live overlay's since."""
        r = self.row.get(customer_id)
        if r is not None and self.newest is not None:
            newest = self.newest[r].tolist()
            found = {c: d for c, d in enumerate(newest) if d == d}  # not NaN
        elif bundle_row >= 0:
            b = self.bundle
            positions = [*b.owned.row(bundle_row).tolist(), *b.recent.row(bundle_row).tolist()]
            found = dict.fromkeys((self.code[j] for j in positions), UNKNOWN_DATE)
        else:
            found = {}
        if live is not None:
            for ts, item in live.recent:
                c = self.item_code.get(str(item))
                if c is not None:
                    found[c] = max(found.get(c, UNKNOWN_DATE), day_number(ts))
            for item in live.owned:
                c = self.item_code.get(str(item))
                if c is not None and c not in found:
                    found[c] = UNKNOWN_DATE
        return dict(sorted(found.items(), key=lambda kv: -kv[1])) if len(found) > 1 else found

    def summary_of_positions(self, positions: Iterable[int]) -> Summary:
        """A summary from owned item positions alone (no dates)."""
        return dict.fromkeys((self.code[j] for j in positions), UNKNOWN_DATE)

    # --- reasons -------------------------------------------------------------------------------------

    def explain(self, j: int, summary: Summary, fallback: bool, now: float | None) -> Explained:
        """The reason of item position ``j`` for a customer (see :data:`REASONS`, tried in order)."""
        found = self.device_reason(j, summary, now) if summary else None
        return found or self.item_reason(j, _variant(fallback, summary))

    def device_reason(self, j: int, summary: Summary, now: float | None) -> Explained | None:
        """A reason that names one of the customer's devices, where one holds."""
        best, best_day = -1, 0.0
        for c in self.goes_with[j]:
            day = summary.get(c)
            if day is not None and (best < 0 or day > best_day):
                best, best_day = c, day
        if best >= 0:
            if now is None or best_day == UNKNOWN_DATE:
                return "goes_with_yours", {"device": self.noun[best]}
            return "goes_with", {"device": self.noun[best], "when": ago(now - best_day)}
        own = self.code[j]
        for c in summary:  # newest first
            if c != own and c in self.owners_top and j in self.owners_top[c]:
                return "device_owners", {"device": self.noun[c]}
        return None

    def item_reason(self, j: int, variant: int) -> Explained:
        """The reason when none names a device: the item's popularity, else the answer's kind
        (``variant``: 0 a fallback, 1 the model for a customer who bought something, 2 for one
        who did not)."""
        popular = self.popular[j]
        if popular is not None:
            return popular
        return (self.fallback_only[j], ("history", {}), ("profile", {}))[variant]

    def reason(self, j: int, summary: Summary, fallback: bool, now: float | None) -> str:
        """The text of :meth:`explain` (the device-free reasons are precomputed per item)."""
        if summary and self.device_sensitive[j]:
            found = self.device_reason(j, summary, now)
            if found is not None:
                return self._text(found)
        return self.item_text[j][_variant(fallback, summary)]

    def _text(self, explained: Explained) -> str:
        code, words = explained
        key = (code, *words.values())
        text = self._texts.get(key)
        if text is None:
            text = REASONS[code].template.format(**words)
            if len(self._texts) < 10_000:
                self._texts[key] = text
        return text

    # --- answers --------------------------------------------------------------------------------------

    def answer(
        self,
        customer_id: str,
        items: Sequence[int],
        probabilities: Sequence[float],
        fallback: bool,
        summary: Summary,
        now: float | None,
    ) -> dict[str, Any]:
        """One customer's answer from item positions (-1 pads) and their probabilities."""
        base, sensitive, item_text = self.base, self.device_sensitive, self.item_text
        variant = _variant(fallback, summary)
        out = []
        for j, p in zip(items, probabilities, strict=True):
            if j < 0:
                continue
            found = self.device_reason(j, summary, now) if summary and sensitive[j] else None
            text = self._text(found) if found is not None else item_text[j][variant]
            out.append({**base[j], "score": round(p, SCORE_DECIMALS), "reason": text})
        return {"customer_id": customer_id, "items": out, "fallback": fallback}

    def summaries_of(self, recs: Recommendations) -> list[Summary]:
        """Per row of ``recs``, the summary of the owned and recent items it was computed with."""
        if recs.owned is None:
            return [{} for _ in range(len(recs.items))]
        owned, recent = recs.owned, recs.recent
        return [
            self.summary_of_positions(
                [*owned.row(r).tolist(), *(recent.row(r).tolist() if recent is not None else ())]
            )
            for r in range(owned.rows)
        ]

    def answers(
        self,
        customer_ids: Sequence[str],
        recs: Recommendations,
        summaries: Sequence[Summary] | None = None,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """One answer per customer of ``recs`` (summaries: by default from its owned items)."""
        summaries = self.summaries_of(recs) if summaries is None else summaries
        probability = recs.probability if recs.probability is not None else recs.scores
        return [
            self.answer(c, items, probs, fallback, s, now)
            for c, items, probs, fallback, s in zip(
                customer_ids,
                recs.items.tolist(),
                probability.tolist(),
                recs.fallback.tolist(),
                summaries,
                strict=True,
            )
        ]

    def frame(
        self, recs: Recommendations, summaries: Sequence[Summary] | None = None, now: float | None = None
    ) -> pd.DataFrame:
        """Long format, one row per item: ``customer_id, rank, item_id, category, subcategory,
        price, score, reason, fallback`` (the answers' fields)."""
        summaries = self.summaries_of(recs) if summaries is None else summaries
        n, k = recs.items.shape
        keep = recs.items.reshape(-1) >= 0
        flat = recs.items.reshape(-1)[keep]
        fallback = np.repeat(recs.fallback, k)[keep]
        probability = recs.probability if recs.probability is not None else recs.scores
        customer_rows = np.repeat(np.arange(n), k)[keep]
        ids = recs.customer_ids if recs.customer_ids is not None else np.arange(n).astype(str)
        base = self.base
        return pd.DataFrame(
            {
                "customer_id": np.asarray(ids, dtype=object)[customer_rows],
                "rank": np.tile(np.arange(1, k + 1), n)[keep],
                "item_id": [base[j]["item_id"] for j in flat.tolist()],
                "category": [base[j]["category"] for j in flat.tolist()],
                "subcategory": pd.Series([base[j]["subcategory"] for j in flat.tolist()], dtype=object),
                "price": pd.Series([base[j]["price"] for j in flat.tolist()], dtype="float64"),
                "score": np.round(probability.reshape(-1)[keep].astype(np.float64), SCORE_DECIMALS),
                "reason": [
                    self.reason(j, summaries[r], f, now)
                    for j, r, f in zip(flat.tolist(), customer_rows.tolist(), fallback.tolist(), strict=True)
                ],
                "fallback": fallback,
            }
        )


def _variant(fallback: bool, summary: Summary) -> int:
    return 0 if fallback else 1 if summary else 2


def _owned_with_dates(snapshot: OnlineSnapshot) -> pd.DataFrame:
    """``customer_id, item_id, day`` of every purchase pair of the snapshot: from its
    ``owned.parquet`` (last purchase time), else from its lookups without dates."""
    path = Path(snapshot.path) / "owned.parquet" if snapshot.path is not None else None
    if path is not None and path.is_file():
        owned = pd.read_parquet(path, columns=["customer_id", "item_id", "last_ts"])
        owned = owned.dropna(subset=["customer_id", "item_id"])
        return pd.DataFrame(
            {
                "customer_id": owned["customer_id"].astype(str).to_numpy(dtype=object),
                "item_id": owned["item_id"].astype(str).to_numpy(dtype=object),
                "day": _day_numbers(owned["last_ts"]) if len(owned) else np.zeros(0),
            }
        )
    pairs = [(str(c), str(i)) for c, items in snapshot.owned.items() for i in items]
    return pd.DataFrame(
        {
            "customer_id": [c for c, _ in pairs],
            "item_id": [i for _, i in pairs],
            "day": np.full(len(pairs), UNKNOWN_DATE),
        }
    )
