"""The weekly simulation of one chunk of customers, with its ground truth.

Each week every customer who has signed up and not churned may replace their phone (its
lifecycle), buys other things (the category follows the cross-sell state), browses, opens the app
and pushes, posts, files tickets and redeems coupons, and then may churn. The hidden state the
weeks carry forward is :class:`HiddenState`; what they do goes to an
:class:`~features.synth.events.ActivityLog`, expanded into events at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from features.synth.config import (
    C_ACC,
    C_LAPTOP,
    C_PHONE,
    C_SMART,
    C_TV,
    C_WEAR,
    CATEGORY_BASE,
    FIRST_PHONE_AT_SIGNUP,
    FIRST_PHONE_FADE_WEEKS,
    FIRST_PHONE_LATER,
    FRESH_PHONE_CROSS_SELL,
    FRESH_PHONE_WEARABLE_SHARE,
    FRESH_PHONE_WEEKS,
    MAX_PURCHASES_PER_WEEK,
    PHONE_REPLACE_MAX,
    PHONE_REPLACE_MID_YEARS,
    PHONE_REPLACE_SPREAD_YEARS,
    PRIOR_OWNERSHIP,
    PROMOTIONS,
    PURCHASE_RATE,
    PUSH_OPEN_RATE,
    START,
    TASTE_DIM,
    WEEKS,
)
from features.synth.events import EVENT_CODE, PURCHASE, ActivityLog, expand_events
from features.synth.population import Catalogue, Customers, customers_frame, draw_customers
from features.vocab import CATEGORIES

TICKET_DECAY = 0.93  # weekly decay of the recent-tickets count that raises the churn hazard
NO_PHONE_WEEK = -10_000  # the phone week of a customer without a phone from the brand


@dataclass
class ChunkOutput:
    """One chunk's contract tables and ground truth."""

    customers: pd.DataFrame
    events: pa.Table
    truth_customers: pd.DataFrame
    truth_monthly: pd.DataFrame


@dataclass
class HiddenState:
    """What the weeks carry forward for each customer of a chunk."""

    alive: np.ndarray
    churn_week: np.ndarray  # -1 while alive
    trickle: np.ndarray  # churned customers who keep opening the app now and then
    engagement: np.ndarray  # drifts week by week, for some customers downwards
    owned: np.ndarray  # (n, categories) bool
    phone_week: np.ndarray  # week of the customer's own latest phone, far in the past for none
    prior_phone_week: np.ndarray  # of the phone owned at the start, far in the past for none
    tickets_recent: np.ndarray  # exponentially decayed count of service tickets


@dataclass
class Week:
    """One week's view of a chunk, fixed at the start of the week."""

    index: int
    season: float  # shopping-activity multiplier
    started: np.ndarray  # signed up by this week
    active: np.ndarray  # signed up and not churned
    eng: np.ndarray  # multiplier of activity from engagement
    n_eco: np.ndarray  # categories owned
    phone_age_years: np.ndarray  # 0 for customers without a phone


class MonthlyTruth:
    """Per customer and calendar month: alive at its start, mean weekly hazard and purchase rate."""

    def __init__(self, n: int) -> None:
        week_starts = [START + timedelta(days=7 * w) for w in range(WEEKS)]
        self._month_of_week = [pd.Timestamp(d.year, d.month, 1) for d in week_starts]
        self._months: list[tuple[pd.Timestamp, np.ndarray, np.ndarray, np.ndarray]] = []
        self._alive_at_start = np.ones(n, dtype=bool)
        self._start_month(n)

    def _start_month(self, n: int) -> None:
        self._hazard = np.zeros(n)
        self._rate = np.zeros(n)
        self._weeks = 0

    def add_week(self, w: int, hazard: np.ndarray, rate: np.ndarray, alive: np.ndarray) -> None:
        """Account week ``w``; ``alive`` is the state at its end."""
        self._hazard += hazard
        self._rate += rate
        self._weeks += 1
        if w == WEEKS - 1 or self._month_of_week[w + 1] != self._month_of_week[w]:
            month = self._month_of_week[w]
            self._months.append(
                (month, self._alive_at_start, self._hazard / self._weeks, self._rate / self._weeks)
            )
            self._start_month(len(alive))
            self._alive_at_start = alive.copy()

    def frame(self, customer_id: np.ndarray) -> pd.DataFrame:
        """The truth/monthly table of the chunk."""
        frame = pd.concat(
            [
                pd.DataFrame(
                    {
                        "customer_id": customer_id,
                        "month": month,
                        "alive_at_start": alive,
                        "weekly_hazard": hazard.astype(np.float32),
                        "weekly_purchase_rate": rate.astype(np.float32),
                    }
                )
                for month, alive, hazard, rate in self._months
            ],
            ignore_index=True,
        )
        frame["month"] = frame["month"].astype("datetime64[us]")
        return frame


def simulate_chunk(
    first_index: int, n: int, catalogue: Catalogue, seed: np.random.SeedSequence
) -> ChunkOutput:
    """Simulate ``n`` customers week by week; return their tables and ground truth."""
    rng = np.random.default_rng(seed)
    customers = draw_customers(n, first_index, rng)
    state = initial_state(customers, rng)
    log = ActivityLog()
    months = MonthlyTruth(n)
    for w, season in enumerate(week_multipliers()):
        simulate_week(w, season, customers, state, log, months, rng)
    events = expand_events(log, customers, catalogue, rng)
    table = customers_frame(customers, rng)  # after the events: it draws from the same generator
    return ChunkOutput(table, events, customer_truth(customers, state), months.frame(customers.customer_id))


def week_multipliers() -> np.ndarray:
    """(WEEKS,) shopping-activity multiplier of each week: the promotions, by their overlap with it."""
    mult = np.ones(WEEKS)
    for w in range(WEEKS):
        start = (START + timedelta(days=7 * w)).date()
        end = start + timedelta(days=6)
        for first, last, m in PROMOTIONS:
            overlap = (min(end, last) - max(start, first)).days + 1
            if overlap > 0:
                mult[w] = max(mult[w], 1 + (m - 1) * overlap / 7)
    return mult


def phone_replacement_chance(age_years: np.ndarray) -> np.ndarray:
    """The weekly chance that an average customer replaces a phone of this age."""
    return PHONE_REPLACE_MAX / (
        1 + np.exp(-(age_years - PHONE_REPLACE_MID_YEARS) / PHONE_REPLACE_SPREAD_YEARS)
    )


def _steady_phone_ages(max_weeks: int = 5 * 52) -> np.ndarray:
    """P(a phone is ``k`` weeks old) in a population that has replaced phones for long: in a
    renewal process the age's density is proportional to the chance of surviving to it."""
    survival = np.cumprod(1 - phone_replacement_chance(np.arange(max_weeks) / 52.0))
    return survival / survival.sum()


STEADY_PHONE_AGE_P = _steady_phone_ages()


def initial_state(customers: Customers, rng: np.random.Generator) -> HiddenState:
    """The state before the first week: who signed up before the start already owns devices, a
    phone of an age drawn from the lifecycle's steady state (no older than the membership)."""
    n = len(customers)
    trickle = rng.random(n) < 0.33
    engagement = rng.normal(0, 0.5, n)
    owned = np.zeros((n, len(CATEGORIES)), dtype=bool)
    prior = customers.signup_week < 0
    owned[:, C_PHONE] = prior & (rng.random(n) < 0.85)
    steady_age = 1 + rng.choice(len(STEADY_PHONE_AGE_P), n, p=STEADY_PHONE_AGE_P)  # in weeks
    age_weeks = np.minimum(steady_age, -customers.signup_week)
    phone_week = np.where(owned[:, C_PHONE], -age_weeks, NO_PHONE_WEEK)
    for category, p in PRIOR_OWNERSHIP.items():
        owned[:, CATEGORIES.index(category)] = prior & (rng.random(n) < p)
    return HiddenState(
        alive=np.ones(n, dtype=bool),
        churn_week=np.full(n, -1),
        trickle=trickle,
        engagement=engagement,
        owned=owned,
        phone_week=phone_week,
        prior_phone_week=phone_week.copy(),
        tickets_recent=np.zeros(n),
    )


def simulate_week(
    w: int,
    season: float,
    customers: Customers,
    state: HiddenState,
    log: ActivityLog,
    months: MonthlyTruth,
    rng: np.random.Generator,
) -> None:
    """One week: engagement drifts, phones age and are replaced, customers buy and engage, then
    some churn."""
    week = start_week(w, season, customers, state, rng)
    phone = phone_chance(week, customers, state)
    buy_phones(week, rng.random(len(customers)) < phone, state, log)
    rate = purchase_rate(week, customers)
    buy(week, np.minimum(rng.poisson(rate), MAX_PURCHASES_PER_WEEK), state, log, rng)
    extra = cross_sell_rate(week, state)
    cross_sell(week, np.minimum(rng.poisson(extra), MAX_PURCHASES_PER_WEEK), state, log, rng)
    engage(week, customers, state, log, rng)
    hazard = churn_hazard(week, customers, state)
    churn(week, hazard, state, rng)
    state.tickets_recent *= TICKET_DECAY
    months.add_week(w, hazard, rate + phone + extra, state.alive)


def start_week(
    w: int, season: float, customers: Customers, state: HiddenState, rng: np.random.Generator
) -> Week:
    """Drift the engagement and fix the week's view of the state."""
    started = customers.signup_week <= w
    state.engagement += -customers.decline + rng.normal(0, 0.08, len(customers))
    np.clip(state.engagement, -3, 2, out=state.engagement)
    owns_phone = state.owned[:, C_PHONE]
    return Week(
        index=w,
        season=season,
        started=started,
        active=state.alive & started,
        eng=np.exp(0.6 * state.engagement),
        n_eco=state.owned.sum(axis=1),
        phone_age_years=np.where(owns_phone, (w - state.phone_week) / 52.0, 0.0),
    )


def purchase_rate(week: Week, customers: Customers) -> np.ndarray:
    """The expected number of purchases other than one's own phone of each customer this week."""
    rate = PURCHASE_RATE * customers.activity * week.season * week.eng * (1 + 0.15 * customers.tier)
    return np.where(week.active, rate, 0.0)


def phone_chance(week: Week, customers: Customers, state: HiddenState) -> np.ndarray:
    """The chance of buying one's own phone this week: replacing an ageing one (sooner for
    customers who buy and engage more, and in promotions), or a first one from the brand."""
    lean = np.sqrt(customers.activity) * np.exp(0.3 * state.engagement) * np.sqrt(week.season)
    replace = phone_replacement_chance(week.phone_age_years) * lean
    weeks_member = week.index - customers.signup_week
    first = FIRST_PHONE_AT_SIGNUP * np.exp(-weeks_member / FIRST_PHONE_FADE_WEEKS) + FIRST_PHONE_LATER * lean
    chance = np.where(state.owned[:, C_PHONE], replace, first)
    return np.where(week.active, np.clip(chance, 0.0, 0.9), 0.0)


def buy_phones(week: Week, buys: np.ndarray, state: HiddenState, log: ActivityLog) -> None:
    """Log the week's own-phone purchases; the new phone is fresh from now on."""
    buyer = np.flatnonzero(buys)
    state.owned[buyer, C_PHONE] = True
    state.phone_week[buyer] = week.index
    log.add(week.index, buyer, PURCHASE, np.ones(len(buyer), dtype=np.int64), np.full(len(buyer), C_PHONE))


def buy(
    week: Week, n_buy: np.ndarray, state: HiddenState, log: ActivityLog, rng: np.random.Generator
) -> None:
    """Draw the category of each purchase besides the phone in turn; every purchase updates what the
    buyer owns."""
    for draw in range(MAX_PURCHASES_PER_WEEK):
        buyer = np.flatnonzero(n_buy > draw)
        if len(buyer) == 0:
            break
        weights = category_weights(week, buyer, state)
        category = (rng.random(len(buyer))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
        category = np.minimum(category, len(CATEGORIES) - 1)
        state.owned[buyer, category] = True
        log.add(week.index, buyer, PURCHASE, np.ones(len(buyer), dtype=np.int64), category)


def cross_sell_rate(week: Week, state: HiddenState) -> np.ndarray:
    """The expected number of purchases that go with a phone bought in the past weeks (not this
    week's: a purchase's time inside its week is drawn later, so it could come before the phone)."""
    since = week.index - state.phone_week
    fresh = (since >= 1) & (since <= FRESH_PHONE_WEEKS)
    return np.where(week.active & fresh, FRESH_PHONE_CROSS_SELL * week.eng, 0.0)


def cross_sell(
    week: Week, n_buy: np.ndarray, state: HiddenState, log: ActivityLog, rng: np.random.Generator
) -> None:
    """Log the purchases that go with a new phone: a first wearable for some who have none, else an
    accessory."""
    for draw in range(MAX_PURCHASES_PER_WEEK):
        buyer = np.flatnonzero(n_buy > draw)
        if len(buyer) == 0:
            break
        wearable = ~state.owned[buyer, C_WEAR] & (rng.random(len(buyer)) < FRESH_PHONE_WEARABLE_SHARE)
        category = np.where(wearable, C_WEAR, C_ACC)
        state.owned[buyer, category] = True
        log.add(week.index, buyer, PURCHASE, np.ones(len(buyer), dtype=np.int64), category)


def category_weights(week: Week, buyer: np.ndarray, state: HiddenState) -> np.ndarray:
    """(buyers, categories) probabilities of the category of a purchase besides the phone (whose
    weight is zero: phones follow their lifecycle): the base weights times the cross-sell state
    (a fresh phone -> accessories and wearables; several categories -> smart home; owned tv or
    laptop -> rarely another).

    It reads the live ownership, so a phone bought earlier this week counts as fresh."""
    owned = state.owned
    weights = np.tile(CATEGORY_BASE, (len(buyer), 1))
    fresh_phone = (week.index - state.phone_week[buyer]) <= FRESH_PHONE_WEEKS
    weights[:, C_ACC] *= np.where(fresh_phone, 5.0, 1.0)
    weights[:, C_WEAR] *= np.where(
        fresh_phone & ~owned[buyer, C_WEAR], 4.0, np.where(owned[buyer, C_WEAR], 0.6, 1.0)
    )
    weights[:, C_SMART] *= 1.0 + 0.35 * np.clip(week.n_eco[buyer] - 1, 0, 4)
    weights[:, C_TV] *= np.where(owned[buyer, C_TV], 0.3, 1.0)
    weights[:, C_LAPTOP] *= np.where(owned[buyer, C_LAPTOP], 0.3, 1.0)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights


def engage(
    week: Week, customers: Customers, state: HiddenState, log: ActivityLog, rng: np.random.Generator
) -> None:
    """Draw and log the week's activity besides purchases; tickets add to the recent count."""
    counts = {kind: rng.poisson(rate) for kind, rate in activity_rates(week, customers, state).items()}
    counts["push_open"] = (rng.random(len(customers)) < push_open_chance(week, customers)).astype(np.int64)
    for kind, count in counts.items():
        who = np.flatnonzero(count > 0)
        log.add(week.index, who, EVENT_CODE[kind], count[who].astype(np.int64))
    state.tickets_recent += counts["service_ticket"]


def activity_rates(week: Week, customers: Customers, state: HiddenState) -> dict[str, np.ndarray]:
    """Expected weekly counts per event type; the order of the types is the order of the draws."""
    active, eng = week.active, week.eng
    # a churned customer of the trickle keeps opening the app now and then
    trickle = np.where(state.alive | ~state.trickle | ~week.started, 0.0, 0.03)
    tickets = 0.004 * customers.quality * (1 + 0.5 * week.n_eco) * (1 + 0.6 * (week.phone_age_years > 2))
    return {
        "view": np.where(active, 0.20 * customers.activity * week.season**0.5 * eng, 0.0),
        "app_open": np.where(active, 0.20 * eng, trickle),
        "service_ticket": np.where(active, tickets, 0.0),
        "community_post": np.where(active, 0.05 * customers.community * eng, 0.0),
        "coupon_redeem": np.where(active, 0.012 * (1 + customers.tier) * week.season, 0.0),
    }


def push_open_chance(week: Week, customers: Customers) -> np.ndarray:
    """The chance of opening this week's push."""
    chance = np.clip(PUSH_OPEN_RATE * week.eng * (0.5 + customers.push_affinity), 0, 0.5)
    return np.where(week.active, chance, 0.0)


def churn_hazard(week: Week, customers: Customers, state: HiddenState) -> np.ndarray:
    """The weekly churn hazard: recent tickets, falling engagement, an ageing phone and few owned
    categories raise it; tier, ecosystem depth and spending power lower it."""
    logit = (
        -6.3
        + 0.55 * state.tickets_recent
        - 0.9 * state.engagement
        + 0.45 * np.clip(week.phone_age_years - 1.5, 0, 3)
        - 0.30 * np.clip(week.n_eco, 0, 5)
        - customers.tier * 0.35
        - 0.15 * customers.value
    )
    return np.where(week.active, 1 / (1 + np.exp(-logit)), 0.0)


def churn(week: Week, hazard: np.ndarray, state: HiddenState, rng: np.random.Generator) -> None:
    """Draw who churns this week: they stop buying and browsing from the next week."""
    churns = week.active & (rng.random(len(hazard)) < hazard)
    state.alive &= ~churns
    state.churn_week[churns] = week.index


def customer_truth(customers: Customers, state: HiddenState) -> pd.DataFrame:
    """The truth/customers table of the chunk: churn time, the phone owned at the start (bought
    before the data, so no event shows it), latents and taste."""
    churn_week = np.where(state.churn_week >= 0, state.churn_week, np.nan)
    prior_phone_week = np.where(state.prior_phone_week > NO_PHONE_WEEK, state.prior_phone_week, np.nan)
    return pd.DataFrame(
        {
            "customer_id": customers.customer_id,
            "churn_ts": _week_start(churn_week),
            "prior_phone_ts": _week_start(prior_phone_week),
            "activity": customers.activity,
            "quality": customers.quality,
            "engagement_decline": customers.decline,
        }
        | {f"taste_{d}": customers.taste[:, d].astype(np.float32) for d in range(TASTE_DIM)}
    )


def _week_start(week: np.ndarray) -> pd.DatetimeIndex:
    """The start of each (float, NaN for none) week from START, as timestamps."""
    return pd.to_datetime(week * 7, unit="D", origin=pd.Timestamp(START)).astype("datetime64[us]")
