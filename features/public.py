"""Public data shipped inside installed packages, converted to the input contract.

- CDNOW (``CDNOW_master.txt`` in the ``lifetimes`` wheel): 69,659 purchases of 23,570 customers
  who first bought in the first quarter of 1997, followed to the end of June 1998. Orders only: no
  item ids. Two orders of one customer on one day with the same quantity and value are distinct
  orders in the source, so each order of a day gets its own second (order of the file) and the
  duplicate rule of the contract does not merge them.
- MovieLens-100k (``ml-100k.{inter,user,item}`` in the ``recbole`` wheel): each rating becomes a
  purchase of the movie (implicit feedback), items take their first genre as category, users
  their age (as birth year in 1998) and gender.

The packages are located with ``importlib.util.find_spec`` and never imported: they are
installed with ``--no-deps`` only for their data files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import UserError
from features.vocab import DATASETS, Dataset


def package_dir(package: str) -> Path:
    """The installed folder of a package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"The package {package!r} is not installed: run"
            f" `pip install --no-deps {package}` (it carries the data file)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _data_file(package: str, relative: str) -> Path:
    path = package_dir(package) / relative
    if not path.is_file():
        raise UserError(f"{path} is missing from the installed {package!r} package: expected its data file.")
    return path


def read_cdnow() -> dict[str, pd.DataFrame]:
    """CDNOW purchase logs as contract tables (events only)."""
    path = _data_file("lifetimes", "datasets/CDNOW_master.txt")
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    day = pd.to_datetime(raw["date"], format="%Y%m%d")
    order_of_day = raw.groupby(["customer_id", "date"]).cumcount()
    events = pd.DataFrame(
        {
            "customer_id": "CD" + raw["customer_id"].str.zfill(5),
            "ts": (day + pd.to_timedelta(order_of_day, unit="s")).astype("datetime64[us]"),
            "event_type": "purchase",
            "item_id": pd.Series([None] * len(raw), dtype="string"),
            "quantity": raw["number_of_cds"].astype("int64"),
            "amount": raw["dollar_value"].astype("float64"),
            "channel": "mall",
        }
    )
    return {"events": events}


def read_movielens_100k() -> dict[str, pd.DataFrame]:
    """MovieLens-100k ratings as purchases, with items and customers."""
    folder = package_dir("recbole") / "dataset_example" / "ml-100k"
    inter = pd.read_csv(_data_file("recbole", "dataset_example/ml-100k/ml-100k.inter"), sep="\t", dtype=str)
    users = pd.read_csv(folder / "ml-100k.user", sep="\t", dtype=str)
    items = pd.read_csv(folder / "ml-100k.item", sep="\t", dtype=str, quoting=3)
    for frame in (inter, users, items):
        frame.columns = [c.split(":")[0] for c in frame.columns]  # RecBole names columns "name:type"
    return {
        "events": _movielens_events(inter),
        "customers": _movielens_customers(users),
        "items": _movielens_items(items),
    }


def _movielens_events(inter: pd.DataFrame) -> pd.DataFrame:
    """Each rating as a purchase of the movie (implicit feedback)."""
    return pd.DataFrame(
        {
            "customer_id": "U" + inter["user_id"],
            "ts": pd.to_datetime(inter["timestamp"].astype(float).astype("int64"), unit="s").astype(
                "datetime64[us]"
            ),
            "event_type": "purchase",
            "item_id": "M" + inter["item_id"],
            "quantity": np.ones(len(inter), dtype="int64"),
            "amount": pd.Series([None] * len(inter), dtype="float64"),
            "channel": pd.Series([None] * len(inter), dtype="string"),
        }
    )


def _movielens_items(items: pd.DataFrame) -> pd.DataFrame:
    """Movies as items: the first genre is the category, the second the subcategory."""
    genres = items["class"].fillna("unknown").str.split(" ")
    year = pd.to_numeric(items["release_year"], errors="coerce")
    return pd.DataFrame(
        {
            "item_id": "M" + items["item_id"],
            "category": genres.str[0].str.lower(),
            "subcategory": genres.str[1].str.lower(),
            "price": pd.Series([None] * len(items), dtype="float64"),
            "launch_date": pd.to_datetime(year.astype("Int64").astype("string") + "-01-01", errors="coerce"),
            "active": True,
        }
    )


def _movielens_customers(users: pd.DataFrame) -> pd.DataFrame:
    """Users as customers: their age as a birth year in 1998, gender, and a region of the zip code."""
    return pd.DataFrame(
        {
            "customer_id": "U" + users["user_id"],
            "signup_ts": pd.Series([pd.NaT] * len(users), dtype="datetime64[us]"),
            "birth_year": 1998 - users["age"].astype("int64"),
            "gender": users["gender"].str.lower(),
            "region": "zip" + users["zip_code"].str[0],
            "member_tier": pd.Series([None] * len(users), dtype="string"),
            "points_balance": pd.Series([None] * len(users), dtype="float64"),
        }
    )


def import_dataset(name: Dataset, out: str | Path) -> dict[str, int]:
    """Write a public data set as contract tables (Parquet) into ``out``; return rows per table."""
    readers = {"cdnow": read_cdnow, "movielens-100k": read_movielens_100k}
    if name not in readers:
        raise UserError(f"Unknown public data set {name!r}: expected one of {', '.join(DATASETS)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = readers[name]()
    for table, frame in tables.items():
        frame.to_parquet(out / f"{table}.parquet", index=False)
    return {table: len(frame) for table, frame in tables.items()}
