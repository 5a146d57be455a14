"""A hand-built log with known answers (customers A-D), written as a contract folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

AS_OF = pd.Timestamp("2025-07-01")


def write_log(folder: Path, events: list[tuple], customers=None, items=None) -> Path:
    """A contract folder; events are (customer_id, ts, event_type, item_id, quantity, amount, channel)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        events, columns=["customer_id", "ts", "event_type", "item_id", "quantity", "amount", "channel"]
    )
    frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601")
    frame.to_parquet(folder / "events.parquet", index=False)
    if customers is not None:
        pd.DataFrame(customers).to_parquet(folder / "customers.parquet", index=False)
    if items is not None:
        pd.DataFrame(items).to_parquet(folder / "items.parquet", index=False)
    return folder


HAND_ITEMS = {
    "item_id": ["P1", "P2", "W1", "A1", "S1"],
    "category": ["phone", "phone", "wearable", "accessory", "smart_home"],
    "subcategory": ["flagship", "budget", "watch", "case", "speaker"],
    "price": [800.0, 200.0, 150.0, 20.0, 60.0],
    "launch_date": pd.to_datetime(["2023-01-01"] * 5),
    "active": [True, True, True, True, False],
}
HAND_CUSTOMERS = {
    "customer_id": ["A", "B", "C", "D"],
    "signup_ts": pd.to_datetime(["2022-07-01", "2024-01-15", "2025-06-01", "2025-08-01"]),
    "birth_year": [1990, 2001, None, 1980],
    "gender": ["f", "m", None, "f"],
    "region": ["east", "south", None, "north"],
    "member_tier": ["gold", "standard", None, "silver"],
    "points_balance": [1200.0, 10.0, None, 0.0],
}
# Customer A: the busy one. B: lapsed long ago. C: only app opens. D: signs up after as-of.
HAND_EVENTS = [
    ("A", "2023-07-01 10:00", "purchase", "P2", 1, 200.0, "mall"),  # old phone
    ("A", "2025-01-10 09:00", "purchase", "P1", 1, 800.0, "app"),  # current phone, 172 days before
    ("A", "2025-06-05 12:00", "view", "W1", None, None, "app"),
    ("A", "2025-06-05 12:05", "add_to_cart", "W1", 1, None, "app"),
    ("A", "2025-06-05 12:10", "purchase", "W1", 1, 150.0, "app"),  # 26 days before as-of
    ("A", "2025-06-20 08:00", "return", "W1", 1, 150.0, "app"),
    ("A", "2025-06-24 08:00", "purchase", "A1", 2, 40.0, "offline_store"),  # 7 days before
    ("A", "2025-06-25 08:00", "service_ticket", None, None, None, None),
    ("A", "2025-05-01 08:00", "service_ticket", None, None, None, None),
    ("A", "2024-11-01 08:00", "service_ticket", None, None, None, None),  # >90d, <365d
    ("A", "2025-06-28 20:00", "app_open", None, None, None, "app"),
    ("A", "2025-06-29 20:00", "push_open", None, None, None, "app"),
    ("A", "2025-04-15 20:00", "app_open", None, None, None, "app"),  # in the 60 days before
    ("A", "2025-03-01 11:00", "coupon_redeem", None, None, None, "mall"),
    ("A", "2025-06-30 23:59:59", "community_post", None, None, None, "social"),
    ("B", "2024-03-01 10:00", "purchase", "S1", 1, 60.0, "partner"),
    ("B", "2024-03-02 10:00", "view", "P1", None, None, "mall"),
    ("C", "2025-06-10 10:00", "app_open", None, None, None, "app"),
    ("C", "2025-06-11 10:00", "app_open", None, None, None, "app"),
    # after as-of: labels only
    ("A", "2025-07-01 00:00", "purchase", "S1", 1, 60.0, "app"),  # at as-of: in the label window
    ("B", "2025-09-29 00:00", "purchase", "P2", 1, 200.0, "mall"),  # exactly at as-of + 90: outside
    ("C", "2025-08-01 10:00", "purchase", "A1", 1, 20.0, "app"),
    ("D", "2025-10-15 10:00", "app_open", None, None, None, "app"),  # the data ends here
]
