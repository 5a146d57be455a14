"""The recommender's data: a split in positions, and the inputs of the towers and the category head.

Customers and items become positions (rows of the training matrix, columns of the catalogue);
every model of the job reads the same :class:`Prepared`. The towers' customer inputs are computed
from training data only; the category head's rows are the feature snapshots at the start of
earlier windows of the test window's length (see :func:`head_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.interactions import InteractionSplit
from features.snapshot import build_snapshot
from features.vocab import TIER_RANK, UNKNOWN_TIER
from serving.bundle import RECENT_SLOTS, ItemLists
from training.two_tower import HeadInputs, TowerInputs, TwoTowerConfig, history_matrix

PRICE_BANDS = 5
TOP_CATEGORIES = 20  # category-mix features for at most this many categories
TOP_LEVELS = 12  # one-hot columns for at most this many genders or regions
HEAD_WINDOWS = 4  # earlier windows the category head learns from
MIN_HEAD_WINDOW_DAYS = 30


@dataclass
class Prepared:
    """The split in positions: customers (with training data) and items of the catalogue."""

    split: InteractionSplit
    customer_ids: np.ndarray  # (n_customers,) customers with training interactions
    item_ids: np.ndarray  # (n_items,)
    items: pd.DataFrame  # catalogue rows in item order: category, subcategory, price, active
    matrix: sp.csr_matrix  # (n_customers, n_items) summed interaction weights
    owned: ItemLists  # training purchases per customer (excluded from ranking)
    recent: ItemLists  # training purchases per customer, newest first
    test_customers: np.ndarray  # (n_test,) customer ids with held-out purchases
    test_rows: np.ndarray  # their customer positions (-1: no training data)
    relevant: list[np.ndarray]  # held-out item positions per test customer


# ---------------------------------------------------------------------------------------------
# positions


def prepare(con, split: InteractionSplit) -> Prepared:
    """Positions for customers and items, the training matrix, owned/recent lists, test sets."""
    catalogue = _catalogue(con, split)
    item_index = pd.Index(catalogue["item_id"])
    customer_index = pd.Index(np.sort(split.train["customer_id"].unique()))
    matrix = _training_matrix(split.train, customer_index, item_index)
    buys = split.train[split.train["event_type"] == "purchase"]
    buys = buys.sort_values("ts", ascending=False, kind="stable").drop_duplicates(["customer_id", "item_id"])
    owned = _lists(customer_index, item_index, buys)
    test_customers, test_rows, relevant = _test_sets(split.test, customer_index, item_index)
    return Prepared(
        split, customer_index.to_numpy(dtype=object), item_index.to_numpy(dtype=object), catalogue,
        matrix, owned, owned, test_customers, test_rows, relevant,  # owned is newest first: the recent list
    )  # fmt: skip


def _catalogue(con, split: InteractionSplit) -> pd.DataFrame:
    """The items table in item-id order, with the items only the events name (unknown, active)."""
    catalogue = con.execute("SELECT item_id, category, subcategory, price, active FROM items").df()
    seen = pd.Index(pd.concat([split.train["item_id"], split.test["item_id"]]).unique())
    extra = seen.difference(pd.Index(catalogue["item_id"]))
    if len(extra):
        unknown = pd.DataFrame({"item_id": extra, "active": True})
        catalogue = pd.concat([catalogue, unknown], ignore_index=True)
    catalogue = catalogue.sort_values("item_id").reset_index(drop=True)
    catalogue["category"] = catalogue["category"].fillna("unknown").astype(str)
    catalogue["subcategory"] = catalogue["subcategory"].fillna("unknown").astype(str)
    catalogue["active"] = catalogue["active"].fillna(True).astype(bool)
    return catalogue


def _training_matrix(train: pd.DataFrame, customer_index: pd.Index, item_index: pd.Index) -> sp.csr_matrix:
    """(customers, items) summed interaction weights of the training events."""
    rows = customer_index.get_indexer(train["customer_id"])
    cols = item_index.get_indexer(train["item_id"])
    matrix = sp.csr_matrix(
        (train["weight"].to_numpy(np.float32), (rows, cols)), shape=(len(customer_index), len(item_index))
    )
    matrix.sum_duplicates()
    return matrix


def _test_sets(
    test: pd.DataFrame, customer_index: pd.Index, item_index: pd.Index
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Test customers (sorted), their customer positions (-1: unknown) and held-out item positions."""
    test_customers = np.sort(test["customer_id"].unique())
    test_rows = customer_index.get_indexer(test_customers)
    grouped = test.assign(pos=item_index.get_indexer(test["item_id"])).groupby("customer_id")["pos"]
    relevant_map = {c: np.asarray(v, dtype=np.int64) for c, v in grouped}
    return test_customers, test_rows, [relevant_map[c] for c in test_customers]


def _lists(customer_index: pd.Index, item_index: pd.Index, frame: pd.DataFrame) -> ItemLists:
    """Per customer position, the item positions of ``frame`` rows in their order."""
    rows = customer_index.get_indexer(frame["customer_id"])
    cols = item_index.get_indexer(frame["item_id"])
    order = np.argsort(rows, kind="stable")
    counts = np.bincount(rows, minlength=len(customer_index))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return ItemLists(indptr, cols[order].astype(np.int64))


# ---------------------------------------------------------------------------------------------
# the towers' inputs


def customer_features(con, prep: Prepared) -> tuple[np.ndarray, list[str]]:
    """Standardised profile (age, gender, region, tier, points, tenure) and category mix of the
    training purchases, one row per customer position. Computed from training data only.

    The profile is the feature snapshot's declared columns (the profile and loyalty families) as
    of the day after the last training event. A value the snapshot declares unknown (an unknown
    tier, gender or region, a missing age) sits at the mean, and a column the data never fills is
    left out.
    """
    columns = _profile_columns(con, prep) | _history_columns(prep)
    names = list(columns)
    frame = pd.DataFrame(columns, columns=names, dtype=float)
    std = frame.std(ddof=0).fillna(0.0)
    x = (frame - frame.mean().fillna(0.0)) / std.where(std > 0, 1.0)
    return x.fillna(0.0).to_numpy(np.float32), names  # missing values sit at the mean


PROFILE_COLUMNS = ("age", "tenure_days", "member_tier", "tier_rank", "points_balance", "gender", "region")


def _profile_columns(con, prep: Prepared) -> dict[str, np.ndarray]:
    """Age, tenure, log points, tier rank, gender and region one-hots, from the snapshot."""
    end = prep.split.train["ts"].max()
    as_of = end.normalize() + pd.Timedelta(days=1)  # the last training day counts
    snapshot = build_snapshot(con, as_of.to_pydatetime())
    profile = snapshot.set_index("customer_id")[list(PROFILE_COLUMNS)].reindex(prep.customer_ids)
    columns: dict[str, np.ndarray] = {}
    for name in ("age", "tenure_days"):
        if profile[name].notna().any():
            columns[name] = profile[name].to_numpy(float)
    columns["log_points"] = np.log1p(profile["points_balance"].clip(lower=0).to_numpy(float))
    known_tier = profile["member_tier"].isin(list(TIER_RANK))
    columns["tier"] = profile["tier_rank"].where(known_tier).to_numpy(float)
    for col in ("gender", "region"):
        levels = profile[col].where(profile[col] != UNKNOWN_TIER).dropna()  # the snapshot's "unknown"
        for value in sorted(levels.unique())[:TOP_LEVELS]:
            columns[f"{col}_{value}"] = (profile[col] == value).to_numpy(float)
    return columns


def _history_columns(prep: Prepared) -> dict[str, np.ndarray]:
    """Log of the items interacted with, and the category mix of the training purchases."""
    columns = {"log_items": np.log1p(np.asarray((prep.matrix > 0).sum(axis=1)).ravel())}
    item_cat = prep.items["category"].to_numpy()
    top = prep.items["category"].value_counts().index[:TOP_CATEGORIES]
    owner = np.repeat(np.arange(prep.owned.rows), prep.owned.lengths())
    cats = item_cat[prep.owned.indices]
    n_owned = np.maximum(prep.owned.lengths(), 1)
    for c in top:
        columns[f"share_{c}"] = np.bincount(owner[cats == c], minlength=prep.owned.rows) / n_owned
    return columns


def tower_inputs(con, prep: Prepared, tt: TwoTowerConfig) -> tuple[TowerInputs, list[str]]:
    """Arrays for the two-tower model: features, item codes, histories, weighted examples."""
    features, names = customer_features(con, prep)
    items = prep.items
    coo = prep.matrix.tocoo()
    subcategory = items["category"] + "/" + items["subcategory"]
    inputs = TowerInputs(
        customer_features=features,
        item_category=pd.factorize(items["category"], sort=True)[0].astype(np.int64),
        item_subcategory=pd.factorize(subcategory, sort=True)[0].astype(np.int64),
        item_price_band=_price_bands(items["price"]),
        history=history_matrix(prep.recent, tt.history_len),
        example_customer=coo.row.astype(np.int64),
        example_item=coo.col.astype(np.int64),
        # one example per (customer, item) pair, whatever its events: down-weighting views by their
        # event weight lost recall on the synthetic time split in a probe here
        example_weight=np.ones(len(coo.data), dtype=np.float32),
    )
    return inputs, names


def _price_bands(prices: pd.Series) -> np.ndarray:
    """Price quantile band 1..PRICE_BANDS per item; 0 for an unknown price."""
    price = pd.to_numeric(prices, errors="coerce")
    bands = np.zeros(len(prices), dtype=np.int64)
    if price.notna().any():
        ranks = price.rank(pct=True).to_numpy()
        bands = 1 + np.minimum((ranks * PRICE_BANDS).astype(int), PRICE_BANDS - 1)
        bands = np.where(np.isnan(ranks), 0, bands)
    return bands.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# the category head's inputs


def head_inputs(con, prep: Prepared, windows: int = HEAD_WINDOWS) -> tuple[HeadInputs, np.ndarray] | None:
    """Training rows for the category head and the serving features, or None without room.

    The test window of a time split has length ``h``; the head learns from ``windows`` earlier
    windows of that length: the customer state at the start of each (the feature snapshot there,
    the categories of the newest purchases) and the categories bought inside it. Returns the
    inputs and the standardised features of every customer at the split date, which the served
    head starts from.
    """
    split = prep.split
    if split.info.get("split") != "time":
        return None  # a random split has no "next": the held-out items are not later in time
    split_at = pd.Timestamp(split.info["split_date"])
    horizon, starts = _head_windows(con, prep, split_at, windows)
    if not starts:
        return None
    state = CustomerState.of(con, prep)
    frames, recents, labels = [], [], []
    for at in starts:
        frame, recent = state.at(at)
        frames.append(frame)
        recents.append(recent)
        labels.append(state.bought(at, at + horizon))
    serving_frame, _ = state.at(split_at)
    train_x, serving_x = _standardise(pd.concat(frames, ignore_index=True), serving_frame)
    return HeadInputs(train_x, np.vstack(recents), np.vstack(labels), state.categories), serving_x


def _head_windows(
    con, prep: Prepared, split_at: pd.Timestamp, windows: int
) -> tuple[pd.Timedelta, list[pd.Timestamp]]:
    """The test window's length, and the starts of the earlier windows with history before them."""
    end = pd.Timestamp(con.execute("SELECT max(ts) FROM events").fetchone()[0])
    days = max(int(np.ceil((end - split_at) / pd.Timedelta(days=1))), MIN_HEAD_WINDOW_DAYS)
    horizon = pd.Timedelta(days=days)
    first = prep.split.train["ts"].min()
    starts = [split_at - horizon * (k + 1) for k in range(windows)]
    return horizon, [t for t in starts if t - first >= horizon]  # some history before each window


@dataclass
class CustomerState:
    """What the head reads of each training customer at a date, from the training purchases."""

    con: object
    customers: pd.Index  # customer positions
    categories: np.ndarray  # (n_categories,) sorted category names: the head's outputs
    buys: pd.DataFrame  # training purchases with their item's category ``code``

    @classmethod
    def of(cls, con, prep: Prepared) -> CustomerState:
        categories = np.sort(prep.items["category"].unique()).astype(object)
        item_code = pd.Index(categories).get_indexer(prep.items["category"])
        buys = prep.split.train[prep.split.train["event_type"] == "purchase"]
        buys = buys.assign(code=item_code[pd.Index(prep.item_ids).get_indexer(buys["item_id"])])
        return cls(con, pd.Index(prep.customer_ids), categories, buys)

    def at(self, at: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
        """The snapshot's numeric columns at ``at`` and the categories of the newest purchases
        before it, (customers, RECENT_SLOTS) codes newest first, -1 pads."""
        customers = self.customers
        snap = build_snapshot(self.con, at.to_pydatetime()).set_index("customer_id").reindex(customers)
        before = self.buys[self.buys["ts"] < at].sort_values("ts", ascending=False, kind="stable")
        before = before.drop_duplicates(["customer_id", "item_id"])  # as the recent-items list
        before = before.assign(slot=before.groupby("customer_id").cumcount())
        before = before[before["slot"] < RECENT_SLOTS]
        recent = np.full((len(customers), RECENT_SLOTS), -1, dtype=np.int64)
        recent[customers.get_indexer(before["customer_id"]), before["slot"].to_numpy()] = before["code"]
        return snap.select_dtypes("number").astype(float), recent

    def bought(self, lo: pd.Timestamp, hi: pd.Timestamp) -> np.ndarray:
        """(customers, categories) 1 where the customer bought in the category within [lo, hi)."""
        window = self.buys[(self.buys["ts"] >= lo) & (self.buys["ts"] < hi)]
        out = np.zeros((len(self.customers), len(self.categories)), dtype=np.float32)
        out[self.customers.get_indexer(window["customer_id"]), window["code"].to_numpy()] = 1.0
        return out


def _standardise(train: pd.DataFrame, serving: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Log-scale heavy-tailed columns, flag missing values, standardise with the training rows."""
    columns = {}
    for name in train.columns:
        heavy = train[name].abs().max() > 10  # counts, money, days
        for part, frame in (("train", train), ("serving", serving)):
            x = frame[name].to_numpy(float)
            columns.setdefault(part, {})[name] = np.sign(x) * np.log1p(np.abs(x)) if heavy else x
            if train[name].isna().any():
                columns[part][f"{name}_missing"] = np.isnan(x).astype(float)
    train_x, serving_x = pd.DataFrame(columns["train"]), pd.DataFrame(columns["serving"])
    mean, std = train_x.mean(), train_x.std(ddof=0)
    std = std.where(std > 0, 1.0)
    return tuple(((x - mean) / std).fillna(0.0).to_numpy(np.float32) for x in (train_x, serving_x))
