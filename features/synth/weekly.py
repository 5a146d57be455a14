"""The weekly simulation of one chunk of customers, with its ground truth.

Each week every customer who has signed up and not churned may replace their phone (its
lifecycle), buys other things (the category follows the cross-sell state), browses, opens the app
and pushes, posts, files tickets and redeems coupons, and then may churn. In the weeks of a
retention campaign (:mod:`.campaigns`) an audience is drawn and split at random first, and the
offer changes the treated customers' hazard and purchases for a while. The hidden state the
weeks carry forward is :class:`HiddenState`; what they do goes to an
:class:`~features.synth.events.ActivityLog`, expanded into events at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from features.campaigns import DEFAULT_WINDOW
from features.synth.campaigns import (
    CAMPAIGN_AT_WEEK,
    RESPONSE_NAMES,
    CampaignLog,
    CampaignSpec,
    Marketing,
    draw_audience,
    draw_responses,
    offer_multipliers,
)
from features.synth.config import (
    C_ACC,
    C_LAPTOP,
    C_PHONE,
    C_SMART,
    C_TV,
    C_WEAR,
    CATEGORY_BASE,
    COUPON_SENSITIVITY,
    EFFECT_WEEKS,
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
from features.synth.hidden import HiddenState, Week
from features.synth.population import Catalogue, Customers, customers_frame, draw_customers
from features.vocab import CATEGORIES, OFFERS

TICKET_DECAY = 0.93  # weekly decay of the recent-tickets count that raises the churn hazard
MAX_HAZARD = 0.9  # an offer that puts a customer off never makes leaving certain
NO_PHONE_WEEK = -10_000  # the phone week of a customer without a phone from the brand
NO_CAMPAIGN_WEEK = -10_000  # the campaign week of a customer in no campaign yet


@dataclass
class ChunkOutput:
    """One chunk's contract tables and ground truth."""

    customers: pd.DataFrame
    events: pa.Table
    truth_customers: pd.DataFrame
    truth_monthly: pd.DataFrame
    campaigns: pd.DataFrame
    truth_campaigns: pd.DataFrame


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
    marketing_rng = np.random.default_rng(seed.spawn(1)[0])
    customers = draw_customers(n, first_index, rng)
    state = initial_state(customers, rng)
    marketing = Marketing(draw_responses(customers, marketing_rng), CampaignLog(), marketing_rng)
    log = ActivityLog()
    months = MonthlyTruth(n)
    for w, season in enumerate(week_multipliers()):
        simulate_week(w, season, customers, state, log, months, rng, marketing)
    events = expand_events(log, customers, catalogue, rng, marketing_rng)
    table = customers_frame(customers, rng)  # after the events: it draws from the same generator
    return ChunkOutput(
        table,
        events,
        customer_truth(customers, state, marketing),
        months.frame(customers.customer_id),
        marketing.log.table(),
        marketing.log.truth(),
    )


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
        hazard_mult=np.ones(n),
        purchase_mult=np.ones(n),
        effect_until=np.zeros(n, dtype=np.int64),
        campaign_week=np.full(n, NO_CAMPAIGN_WEEK),
    )


def simulate_week(
    w: int,
    season: float,
    customers: Customers,
    state: HiddenState,
    log: ActivityLog,
    months: MonthlyTruth,
    rng: np.random.Generator,
    marketing: Marketing,
) -> None:
    """One week: engagement drifts, a campaign may start, phones age and are replaced, customers
    buy and engage, then some churn."""
    week = start_week(w, season, customers, state, rng)
    if w in CAMPAIGN_AT_WEEK:
        run_campaign(CAMPAIGN_AT_WEEK[w], week, customers, state, marketing)
    hazard_mult, purchase_mult = state.effects(w)
    phone = phone_chance(week, customers, state)
    buy_phones(week, rng.random(len(customers)) < phone, state, log)
    rate = purchase_rate(week, customers) * purchase_mult
    buy(week, np.minimum(rng.poisson(rate), MAX_PURCHASES_PER_WEEK), state, log, rng)
    extra = cross_sell_rate(week, state)
    cross_sell(week, np.minimum(rng.poisson(extra), MAX_PURCHASES_PER_WEEK), state, log, rng)
    engage(week, customers, state, log, rng, marketing.responses.price_sensitivity, purchase_mult)
    hazard = np.minimum(churn_hazard(week, customers, state) * hazard_mult, MAX_HAZARD)
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
    """The expected number of purchases other than one's own phone of each customer this week
    (before a campaign's offer multiplies it)."""
    return np.where(week.active, _purchase_rate(customers, week.season, week.eng), 0.0)


def _purchase_rate(customers: Customers, season: float, eng: np.ndarray) -> np.ndarray:
    return PURCHASE_RATE * customers.activity * season * eng * (1 + 0.15 * customers.tier)


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
    week: Week,
    customers: Customers,
    state: HiddenState,
    log: ActivityLog,
    rng: np.random.Generator,
    price_sensitivity: np.ndarray,
    shopping_mult: np.ndarray,
) -> None:
    """Draw and log the week's activity besides purchases (an offer in force multiplies browsing as
    it does purchases); tickets add to the recent count."""
    rates = activity_rates(week, customers, state, price_sensitivity)
    rates["view"] = rates["view"] * shopping_mult
    counts = {kind: rng.poisson(rate) for kind, rate in rates.items()}
    counts["push_open"] = (rng.random(len(customers)) < push_open_chance(week, customers)).astype(np.int64)
    for kind, count in counts.items():
        who = np.flatnonzero(count > 0)
        log.add(week.index, who, EVENT_CODE[kind], count[who].astype(np.int64))
    state.tickets_recent += counts["service_ticket"]


def activity_rates(
    week: Week, customers: Customers, state: HiddenState, price_sensitivity: np.ndarray
) -> dict[str, np.ndarray]:
    """Expected weekly counts per event type; the order of the types is the order of the draws."""
    active = week.active
    # a churned customer of the trickle keeps opening the app now and then
    trickle = np.where(state.alive | ~state.trickle | ~week.started, 0.0, 0.03)
    rates = engagement_rates(
        customers, week.season, week.eng, week.n_eco, week.phone_age_years, price_sensitivity
    )
    return {
        "view": np.where(active, rates["view"], 0.0),
        "app_open": np.where(active, 0.20 * week.eng, trickle),
        "service_ticket": np.where(active, rates["service_ticket"], 0.0),
        "community_post": np.where(active, rates["community_post"], 0.0),
        "coupon_redeem": np.where(active, rates["coupon_redeem"], 0.0),
    }


def engagement_rates(
    customers: Customers,
    season: float,
    eng: np.ndarray,
    n_eco: np.ndarray,
    phone_age_years: np.ndarray,
    price_sensitivity: np.ndarray,
) -> dict[str, np.ndarray]:
    """Expected weekly counts of an active customer's views, tickets, posts and coupon redemptions."""
    base, slope = COUPON_SENSITIVITY
    return {
        "view": 0.20 * customers.activity * season**0.5 * eng,
        "service_ticket": ticket_rate(customers, n_eco, phone_age_years),
        "community_post": 0.05 * customers.community * eng,
        "coupon_redeem": 0.012 * (1 + customers.tier) * season * (base + slope * price_sensitivity),
    }


def ticket_rate(customers: Customers, n_eco: np.ndarray, phone_age_years: np.ndarray) -> np.ndarray:
    """Expected weekly service tickets of an active customer."""
    return 0.004 * customers.quality * (1 + 0.5 * n_eco) * (1 + 0.6 * (phone_age_years > 2))


def push_open_chance(week: Week, customers: Customers) -> np.ndarray:
    """The chance of opening this week's push."""
    return np.where(week.active, _push_open_chance(customers, week.eng), 0.0)


def _push_open_chance(customers: Customers, eng: np.ndarray) -> np.ndarray:
    return np.clip(PUSH_OPEN_RATE * eng * (0.5 + customers.push_affinity), 0, 0.5)


def churn_hazard(week: Week, customers: Customers, state: HiddenState) -> np.ndarray:
    """The weekly churn hazard: recent tickets, falling engagement, an ageing phone and few owned
    categories raise it; tier, ecosystem depth and spending power lower it (before an offer
    multiplies it)."""
    hazard = base_hazard(customers, state.tickets_recent, state.engagement, week.phone_age_years, week.n_eco)
    return np.where(week.active, hazard, 0.0)


def base_hazard(
    customers: Customers,
    tickets_recent: np.ndarray,
    engagement: np.ndarray,
    phone_age_years: np.ndarray,
    n_eco: np.ndarray,
) -> np.ndarray:
    """The weekly churn hazard of an active customer in this state."""
    logit = (
        -6.3
        + 0.55 * tickets_recent
        - 0.9 * engagement
        + 0.45 * np.clip(phone_age_years - 1.5, 0, 3)
        - 0.30 * np.clip(n_eco, 0, 5)
        - customers.tier * 0.35
        - 0.15 * customers.value
    )
    return 1 / (1 + np.exp(-logit))


def churn(week: Week, hazard: np.ndarray, state: HiddenState, rng: np.random.Generator) -> None:
    """Draw who churns this week: they stop buying and browsing from the next week."""
    churns = week.active & (rng.random(len(hazard)) < hazard)
    state.alive &= ~churns
    state.churn_week[churns] = week.index


# -- campaigns --------------------------------------------------------------------------------


def run_campaign(
    spec: CampaignSpec, week: Week, customers: Customers, state: HiddenState, marketing: Marketing
) -> None:
    """Draw the campaign's audience and arms, start its offer for the treated customers, and record
    every audience customer's true chance of being retained under either arm, for every offer."""
    hazard = base_hazard(customers, state.tickets_recent, state.engagement, week.phone_age_years, week.n_eco)
    rows, treated = draw_audience(week, customers, state, hazard, marketing.rng)
    marketing.log.add(spec, customers.customer_id, rows, treated)
    ps = marketing.responses.price_sensitivity
    # no earlier offer is still in force for the audience (the contact gap is longer than an effect)
    ones, none = np.ones(len(customers)), np.zeros(len(customers), dtype=np.int64)
    control = retention_probability(week, customers, state, ones, ones, none, ps)[rows]
    truths = []
    for offer in OFFERS:
        hazard, purchases = offer_multipliers(offer, week, customers, state, marketing.responses)
        full = np.full(len(customers), EFFECT_WEEKS)
        offered = retention_probability(week, customers, state, hazard, purchases, full, ps)[rows]
        truths.append(
            pd.DataFrame(
                {
                    "campaign_id": spec.campaign_id,
                    "customer_id": customers.customer_id[rows],
                    "offer": offer,
                    "treated": treated,
                    "alive": state.alive[rows],
                    "hazard_multiplier": hazard[rows].astype(np.float32),
                    "purchase_multiplier": purchases[rows].astype(np.float32),
                    "p_retained_control": control.astype(np.float32),
                    "p_retained_treated": offered.astype(np.float32),
                    "uplift": (offered - control).astype(np.float32),
                }
            )
        )
        if offer == spec.offer:
            chosen = rows[treated]
            state.hazard_mult[chosen] = hazard[chosen]
            state.purchase_mult[chosen] = purchases[chosen]
            state.effect_until[chosen] = week.index + EFFECT_WEEKS
    marketing.log.add_truth(pd.concat(truths, ignore_index=True))


def retention_probability(
    week: Week,
    customers: Customers,
    state: HiddenState,
    hazard_mult: np.ndarray,
    purchase_mult: np.ndarray,
    effect_weeks: np.ndarray,
    price_sensitivity: np.ndarray,
) -> np.ndarray:
    """(n,) chance of an activity event in the retention window (``features.campaigns``) of a
    campaign that starts this week, if an offer multiplies each customer's hazard and purchases by
    these factors for ``effect_weeks`` weeks.

    The state is carried forward in expectation: engagement drifts by its mean, tickets arrive at
    their expected rate and decay, phones age (none is replaced), promotions follow the calendar.
    Then, with ``h_k`` the week's hazard and ``q_k`` the chance of no activity event in week ``k``,
    ``P(quiet from week k) = q_k (h_k + (1 - h_k) P(quiet from week k + 1))``: no activity this
    week, then the customer leaves or carries on.
    """
    first = DEFAULT_WINDOW.offset_days // 7
    last = (DEFAULT_WINDOW.offset_days + DEFAULT_WINDOW.days) // 7
    seasons = week_multipliers()
    owns_phone = state.owned[:, C_PHONE]
    tickets = state.tickets_recent.copy()
    hazards, quiet = [], []
    for k in range(last):
        season = seasons[min(week.index + k, WEEKS - 1)]
        engagement = np.clip(state.engagement - customers.decline * k, -3, 2)
        eng = np.exp(0.6 * engagement)
        phone_age = np.where(owns_phone, week.phone_age_years + k / 52.0, 0.0)
        rates = engagement_rates(customers, season, eng, week.n_eco, phone_age, price_sensitivity)
        tickets = tickets + rates["service_ticket"]
        on = k < effect_weeks
        hazard = base_hazard(customers, tickets, engagement, phone_age, week.n_eco)
        hazards.append(np.minimum(hazard * np.where(on, hazard_mult, 1.0), MAX_HAZARD))
        shopping = np.where(on, purchase_mult, 1.0)
        purchases = _purchase_rate(customers, season, eng) * shopping
        events = purchases + rates["view"] * shopping + rates["service_ticket"] + rates["community_post"]
        events = events + rates["coupon_redeem"]
        quiet.append(np.exp(-events) * (1 - _push_open_chance(customers, eng)))
        tickets = tickets * TICKET_DECAY
    alive = week.active.astype(float)
    for k in range(first):
        alive = alive * (1 - hazards[k])
    quiet_after = np.ones(len(customers))
    for k in reversed(range(first, last)):
        quiet_after = quiet[k] * (hazards[k] + (1 - hazards[k]) * quiet_after)
    return alive * (1 - quiet_after)


def customer_truth(customers: Customers, state: HiddenState, marketing: Marketing) -> pd.DataFrame:
    """The truth/customers table of the chunk: churn time, the phone owned at the start (bought
    before the data, so no event shows it), latents, the disposition towards offers and taste."""
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
            "price_sensitivity": marketing.responses.price_sensitivity,
            "offer_response": np.array(RESPONSE_NAMES, dtype=object)[marketing.responses.kind],
        }
        | {f"taste_{d}": customers.taste[:, d].astype(np.float32) for d in range(TASTE_DIM)}
    )


def _week_start(week: np.ndarray) -> pd.DatetimeIndex:
    """The start of each (float, NaN for none) week from START, as timestamps."""
    return pd.to_datetime(week * 7, unit="D", origin=pd.Timestamp(START)).astype("datetime64[us]")
