"""The online snapshot: what the service needs to answer fast, in one folder.

``build_online_snapshot`` writes, as of the end of the data (or a given date):
``snapshot.parquet`` (the latest customer snapshot), ``owned.parquet`` (items each customer has
bought), ``recent.parquet`` (each customer's latest purchases, newest first), ``items.parquet``
(catalogue with category and active flag), ``popularity.parquet`` (purchases per item in the last
90 days) and ``manifest.json``. ``load_online_snapshot`` reads them into lookups.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.contract import input_fingerprint, open_validated, sql_string
from features.errors import UserError
from features.families import DUCKDB, FEATURE_SET_NAME, feature_set_version
from features.query import as_datetime
from features.snapshot import build_snapshot, data_end

RECENT_ITEMS = 10
POPULARITY_DAYS = 90


def build_online_snapshot(
    data_dir: str | Path,
    out_dir: str | Path,
    as_of: date | datetime | str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Path:
    """Write the online snapshot folder (atomically: a temporary folder renamed at the end)."""
    con = con or open_validated(data_dir)
    end = data_end(con)
    t = as_datetime(as_of) if as_of else datetime(end.year, end.month, end.day) + timedelta(days=1)
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    build_snapshot(con, t).to_parquet(tmp / "snapshot.parquet", index=False)
    for name, query in _lookups_sql(t, tmp).items():  # in order: recent reads owned
        con.execute(f"COPY ({query}) TO {sql_string(tmp / name)} (FORMAT parquet)")
    manifest = {
        "feature_set": FEATURE_SET_NAME,
        "version": feature_set_version(),
        "as_of": f"{t:%Y-%m-%d %H:%M:%S}",
        "input_fingerprint": input_fingerprint(data_dir),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _lookups_sql(t: datetime, folder: Path) -> dict[str, str]:
    """The query of each lookup file as of ``t``; ``recent`` reads ``owned`` from ``folder``."""
    ts, pop_start = DUCKDB.ts(t), DUCKDB.ts(t - timedelta(days=POPULARITY_DAYS))
    return {
        "owned.parquet": f"""SELECT customer_id, item_id, max(ts) AS last_ts FROM events
            WHERE event_type = 'purchase' AND item_id IS NOT NULL AND ts < {ts}
            GROUP BY 1, 2 ORDER BY 1, 3 DESC""",
        "recent.parquet": f"""SELECT customer_id, item_id, last_ts, rank FROM (
              SELECT customer_id, item_id, last_ts,
                     row_number() OVER (PARTITION BY customer_id ORDER BY last_ts DESC, item_id) AS rank
              FROM read_parquet({sql_string(folder / "owned.parquet")}))
            WHERE rank <= {RECENT_ITEMS} ORDER BY customer_id, rank""",
        "items.parquet": f"""SELECT i.*, coalesce(p.purchases, 0) AS purchases_recent FROM items i
            LEFT JOIN (SELECT item_id, count(*) AS purchases FROM events
                       WHERE event_type = 'purchase' AND ts >= {pop_start} AND ts < {ts}
                       GROUP BY 1) p ON p.item_id = i.item_id
            ORDER BY i.item_id""",
        "popularity.parquet": f"""SELECT item_id, count(*) AS purchases FROM events
            WHERE event_type = 'purchase' AND item_id IS NOT NULL AND ts >= {pop_start} AND ts < {ts}
            GROUP BY 1 ORDER BY 2 DESC, 1""",
    }


@dataclass
class OnlineSnapshot:
    """Lookups for serving. Item lists are numpy arrays of item ids (newest first for recent)."""

    path: Path
    as_of: str
    snapshot: pd.DataFrame  # indexed by customer_id
    owned: dict[str, np.ndarray]
    recent: dict[str, np.ndarray]
    items: pd.DataFrame  # indexed by item_id: category, subcategory, price, active, ...
    popularity: pd.DataFrame  # item_id, purchases (descending)

    def knows(self, customer_id: str) -> bool:
        return customer_id in self.snapshot.index

    def owned_items(self, customer_id: str) -> np.ndarray:
        return self.owned.get(customer_id, _EMPTY)

    def recent_items(self, customer_id: str) -> np.ndarray:
        return self.recent.get(customer_id, _EMPTY)

    def customer_value(self, customer_id: str) -> float:
        if customer_id not in self.snapshot.index:
            return 0.0
        return float(self.snapshot.at[customer_id, "customer_value"])


_EMPTY = np.array([], dtype=object)


def _group(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    if frame.empty:
        return {}
    ids = frame["customer_id"].to_numpy()
    items = frame["item_id"].to_numpy(dtype=object)
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(ids)]])
    return {ids[s]: items[s:e] for s, e in zip(starts, ends, strict=True)}


def load_online_snapshot(path: str | Path) -> OnlineSnapshot:
    """Read an online snapshot folder; a clear error when it is missing or incomplete."""
    path = Path(path)
    needed = ["snapshot.parquet", "owned.parquet", "recent.parquet", "items.parquet", "popularity.parquet"]
    missing = [n for n in needed + ["manifest.json"] if not (path / n).is_file()]
    if missing:
        raise UserError(
            f"Online snapshot {path} is incomplete (missing {', '.join(missing)}): build it with"
            " `crm features build --online` or `crm demo`."
        )
    manifest = json.loads((path / "manifest.json").read_text())
    snapshot = pd.read_parquet(path / "snapshot.parquet").set_index("customer_id", drop=False)
    owned = pd.read_parquet(path / "owned.parquet")
    recent = pd.read_parquet(path / "recent.parquet")
    items = pd.read_parquet(path / "items.parquet").set_index("item_id", drop=False)
    popularity = pd.read_parquet(path / "popularity.parquet")
    return OnlineSnapshot(
        path=path,
        as_of=manifest["as_of"],
        snapshot=snapshot,
        owned=_group(owned),
        recent=_group(recent),
        items=items,
        popularity=popularity,
    )
