"""From the weekly activity log to the contract's events table.

The weeks log who did what how often; expanding the log gives one event per row with a time
inside its week, an item for purchases and views, the funnel of views and an add-to-cart before
each purchase, carts abandoned after some browsing views, some returns, amounts and channels,
and the marketing exposures: the pushes sent (those opened and the others) and ads in the mall
and on social channels, clicked and bought at the brand's rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from features.synth.config import (
    AD_ATTRIBUTED_SHARE,
    AD_LEAD_SECONDS,
    AD_RATES,
    APP_CHANNEL,
    BROWSE_CHANNEL_P,
    CART_ABANDON_RATE,
    DAY_SECONDS,
    END,
    PURCHASE_CHANNEL_P,
    PUSH_OPEN_SHARE,
    RETURN_RATE,
    START,
    VIEW_CATEGORY_P,
    WEEK_SECONDS,
)
from features.synth.population import Catalogue, Customers, choose_items
from features.vocab import CATEGORIES, CHANNELS, EVENT_TYPES

EVENT_CODE = {name: code for code, name in enumerate(EVENT_TYPES)}  # the int8 codes of the arrays
PURCHASE, VIEW, CART, RETURN = (EVENT_CODE[t] for t in ("purchase", "view", "add_to_cart", "return"))
PUSH_OPEN, PUSH_SENT, AD_IMPRESSION, AD_CLICK = (
    EVENT_CODE[t] for t in ("push_open", "push_sent", "ad_impression", "ad_click")
)
NO_CATEGORY = -1  # logged activity other than purchases has none (a view's is drawn on expansion)
NO_ITEM = NO_CHANNEL = -1


@dataclass
class ActivityLog:
    """Per week and event type: which customers (rows of the chunk), how many events each."""

    customer: list[np.ndarray] = field(default_factory=list)
    week: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    category: list[np.ndarray] = field(default_factory=list)
    count: list[np.ndarray] = field(default_factory=list)

    def add(
        self, week: int, who: np.ndarray, kind: int, count: np.ndarray, category: np.ndarray | None = None
    ) -> None:
        """Log ``count[i]`` events of ``kind`` by customer ``who[i]`` in ``week``."""
        self.customer.append(who)
        self.week.append(np.full(len(who), week))
        self.kind.append(np.full(len(who), kind, dtype=np.int8))
        self.category.append(np.full(len(who), NO_CATEGORY) if category is None else category)
        self.count.append(count)


@dataclass
class Events:
    """Events as parallel arrays: customer row, seconds from START, event code and item row."""

    customer: np.ndarray
    seconds: np.ndarray
    kind: np.ndarray
    item: np.ndarray  # NO_ITEM where none

    def derived(self, rows: np.ndarray, seconds: np.ndarray, kind: int) -> Events:
        """Events of ``kind`` at ``seconds`` by the customers, on the items, of ``rows``."""
        return Events(self.customer[rows], seconds, np.full(len(rows), kind), self.item[rows])


def expand_events(
    log: ActivityLog,
    customers: Customers,
    catalogue: Catalogue,
    rng: np.random.Generator,
    marketing_rng: np.random.Generator,
) -> pa.Table:
    """The contract's events of one chunk, sorted by customer and time; the exposures are drawn
    from ``marketing_rng``."""
    logged = _logged_events(log, customers, catalogue, rng)
    buy = np.flatnonzero(logged.kind == PURCHASE)
    abandoned = _abandoned_carts(logged, rng)
    funnel_views, carts = _funnel(logged, buy, rng)
    events = _concat(logged, funnel_views, carts, abandoned, _returns(logged, buy, rng))
    amount = _amounts(events, catalogue, rng)
    channel = _channels(events, rng)
    exposures, exposure_channel = _exposures(events, channel, customers, catalogue, marketing_rng)
    events = _concat(events, exposures)
    amount = np.concatenate([amount, np.full(len(exposures.kind), np.nan)])
    channel = np.concatenate([channel, exposure_channel])
    return _contract_table(events, amount, channel, customers, catalogue, rng)


def _logged_events(
    log: ActivityLog, customers: Customers, catalogue: Catalogue, rng: np.random.Generator
) -> Events:
    """One row per logged event, at a random time of its week; purchases and views get an item."""
    count = np.concatenate(log.count)
    customer, week, kind, category = (
        np.repeat(np.concatenate(parts), count) for parts in (log.customer, log.week, log.kind, log.category)
    )
    seconds = week.astype(np.int64) * WEEK_SECONDS + rng.integers(0, WEEK_SECONDS, len(customer))
    # browsing views pick a category by the browsing shares, then an item by taste (same item model)
    is_view = kind == VIEW
    category[is_view] = rng.choice(len(CATEGORIES), is_view.sum(), p=VIEW_CATEGORY_P)
    needs_item = (kind == PURCHASE) | is_view
    item = np.full(len(customer), NO_ITEM, dtype=np.int64)
    item[needs_item] = choose_items(
        customer[needs_item], category[needs_item], week[needs_item], customers.taste, catalogue, rng
    )
    return Events(customer, seconds, kind, item)


def _funnel(logged: Events, buy: np.ndarray, rng: np.random.Generator) -> tuple[Events, Events]:
    """Before each purchase: one or two views and an add-to-cart of the same item."""
    n_views = rng.integers(1, 3, len(buy))
    viewed = np.repeat(buy, n_views)
    view_seconds = logged.seconds[viewed] - rng.integers(600, 3 * DAY_SECONDS, len(viewed))
    cart_seconds = logged.seconds[buy] - rng.integers(60, 3_600, len(buy))
    return logged.derived(viewed, view_seconds, VIEW), logged.derived(buy, cart_seconds, CART)


def _abandoned_carts(logged: Events, rng: np.random.Generator) -> Events:
    """A share of the browsing views puts the item in the cart minutes later, never bought."""
    views = np.flatnonzero(logged.kind == VIEW)
    carted = views[rng.random(len(views)) < CART_ABANDON_RATE]
    seconds = logged.seconds[carted] + rng.integers(60, 3_600, len(carted))
    inside = seconds <= int((END - START).total_seconds())
    return logged.derived(carted[inside], seconds[inside], CART)


def _returns(logged: Events, buy: np.ndarray, rng: np.random.Generator) -> Events:
    """A share of the purchases comes back 1-30 days later, if that is inside the data."""
    returned = buy[rng.random(len(buy)) < RETURN_RATE]
    seconds = logged.seconds[returned] + rng.integers(DAY_SECONDS, 30 * DAY_SECONDS, len(returned))
    inside = seconds <= int((END - START).total_seconds())
    return logged.derived(returned[inside], seconds[inside], RETURN)


def _exposures(
    events: Events, channel: np.ndarray, customers: Customers, catalogue: Catalogue, rng: np.random.Generator
) -> tuple[Events, np.ndarray]:
    """The pushes sent and the ads shown, with their channels.

    Each is placed shortly before one of the customer's own events, so an exposure never comes
    after a customer's last event and never reaches someone the log shows nothing of.
    """
    pushes = _pushes_sent(events, rng)
    parts, channels = [pushes], [np.full(len(pushes.kind), APP_CHANNEL)]
    for name, (click_rate, purchase_rate) in AD_RATES.items():
        ads = _ads(
            events, channel, CHANNELS.index(name), click_rate, purchase_rate, customers, catalogue, rng
        )
        parts.append(ads)
        channels.append(np.full(len(ads.kind), CHANNELS.index(name)))
    return _concat(*parts), np.concatenate(channels)


def _before(events: Events, rows: np.ndarray, lead: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Seconds a random lead (in ``[lead[0], lead[1])`` seconds) before the events of ``rows``."""
    return events.seconds[rows] - rng.integers(lead[0], lead[1], len(rows))


def _pushes_sent(events: Events, rng: np.random.Generator) -> Events:
    """A push sent minutes to hours before each push opened, and the unopened ones before other
    events of the customers, so that ``PUSH_OPEN_SHARE`` of the pushes sent are opened."""
    opened = np.flatnonzero(events.kind == PUSH_OPEN)
    n_unopened = int(round(len(opened) * (1 / PUSH_OPEN_SHARE - 1)))
    anchors = rng.choice(len(events.kind), n_unopened) if len(events.kind) else np.zeros(0, np.int64)
    rows = np.concatenate([opened, anchors])
    seconds = np.concatenate(
        [_before(events, opened, (60, 6 * 3_600), rng), _before(events, anchors, (60, 2 * DAY_SECONDS), rng)]
    )
    return Events(events.customer[rows], seconds, np.full(len(rows), PUSH_SENT), np.full(len(rows), NO_ITEM))


def _ads(
    events: Events,
    channel: np.ndarray,
    code: int,
    click_rate: float,
    purchase_rate: float,
    customers: Customers,
    catalogue: Catalogue,
    rng: np.random.Generator,
) -> Events:
    """One ad channel's funnel: a share of its purchases followed an ad click on the item (the
    impression and the click days before); so many more clicks and impressions that clicks and
    purchases per impression are the brand's rates. The others show items the customer's taste
    picks, before other events of the customer."""
    bought = np.flatnonzero((events.kind == PURCHASE) & (channel == code))
    name = CHANNELS[code]
    converted = bought[rng.random(len(bought)) < AD_ATTRIBUTED_SHARE[name]]
    n_impressions = int(round(len(converted) / purchase_rate))
    n_clicks = max(int(round(n_impressions * click_rate)), len(converted))
    click_seconds = _before(events, converted, AD_LEAD_SECONDS, rng)
    # the other clicks and the impressions nobody clicked, before random events of the customers
    n_other = n_impressions - len(converted)
    anchors = (
        rng.choice(len(events.kind), n_other) if len(events.kind) and n_other > 0 else np.zeros(0, np.int64)
    )
    other_seconds = _before(events, anchors, (60, 2 * DAY_SECONDS), rng)
    week = np.maximum(other_seconds, 0) // WEEK_SECONDS
    category = rng.choice(len(CATEGORIES), len(anchors), p=VIEW_CATEGORY_P)
    other_items = choose_items(events.customer[anchors], category, week, customers.taste, catalogue, rng)
    customer = np.concatenate([events.customer[converted], events.customer[anchors]])
    item = np.concatenate([events.item[converted], other_items])
    seconds = np.concatenate([click_seconds, other_seconds])
    clicked = np.arange(len(customer)) < n_clicks  # the converted ones first, then other clicks
    impressions_seconds = np.where(clicked, seconds - rng.integers(1, 600, len(customer)), seconds)
    return _concat(
        Events(customer, impressions_seconds, np.full(len(customer), AD_IMPRESSION), item),
        Events(customer[clicked], seconds[clicked], np.full(int(clicked.sum()), AD_CLICK), item[clicked]),
    )


def _concat(*parts: Events) -> Events:
    return Events(
        np.concatenate([p.customer for p in parts]),
        np.concatenate([p.seconds for p in parts]),
        np.concatenate([p.kind for p in parts]).astype(np.int8),
        np.concatenate([p.item for p in parts]),
    )


def _is_money(events: Events) -> np.ndarray:
    return (events.kind == PURCHASE) | (events.kind == RETURN)


def _amounts(events: Events, catalogue: Catalogue, rng: np.random.Generator) -> np.ndarray:
    """Purchases and returns pay the item's price less a small discount; others carry none."""
    price = catalogue.price[np.maximum(events.item, 0)]
    return np.where(_is_money(events), np.round(price * rng.uniform(0.85, 1.0, len(price)), 2), np.nan)


def _channels(events: Events, rng: np.random.Generator) -> np.ndarray:
    """Channel codes: buying and browsing have their own mixes; app and push opens are in the app."""
    n = len(events.kind)
    purchase_like = _is_money(events) | (events.kind == CART)
    channel = np.where(
        purchase_like,
        rng.choice(len(CHANNELS), n, p=PURCHASE_CHANNEL_P),
        rng.choice(len(CHANNELS), n, p=BROWSE_CHANNEL_P),
    )
    in_app = np.isin(events.kind, (EVENT_CODE["app_open"], PUSH_OPEN))
    channel = np.where(in_app, APP_CHANNEL, channel)
    return np.where(events.kind == EVENT_CODE["service_ticket"], NO_CHANNEL, channel)  # tickets have none


def _contract_table(
    events: Events,
    amount: np.ndarray,
    channel: np.ndarray,
    customers: Customers,
    catalogue: Catalogue,
    rng: np.random.Generator,
) -> pa.Table:
    """The events in the contract's columns, sorted by customer and time (to the microsecond)."""
    seconds = np.maximum(events.seconds, 0)  # a funnel view before the start happens at the start
    order = np.lexsort((seconds, events.customer))
    micros = seconds[order].astype(np.int64) * 1_000_000 + rng.integers(0, 1_000_000, len(order))
    quantity = np.where(_is_money(events) | (events.kind == CART), 1, 0)[order]
    amount = amount[order]
    return pa.table(
        {
            "customer_id": pa.array(customers.customer_id, pa.string()).take(
                pa.array(events.customer[order])
            ),
            "ts": pa.array(np.datetime64(START, "us") + micros.astype("timedelta64[us]")),
            "event_type": pa.array(EVENT_TYPES, pa.string()).take(
                pa.array(events.kind[order].astype(np.int64))
            ),
            "item_id": _names(catalogue.item_ids, events.item[order]),
            "quantity": pa.array(quantity.astype(np.int64), mask=quantity == 0),
            "amount": pa.array(amount, mask=np.isnan(amount)),
            "channel": _names(CHANNELS, channel[order]),
        }
    )


def _names(names: np.ndarray | tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """``names[code]`` per row, null where the code is negative."""
    missing = codes < 0
    return pa.array(names, pa.string()).take(pa.array(np.where(missing, 0, codes), mask=missing))
