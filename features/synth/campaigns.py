"""Randomised retention campaigns in the simulated history, and each customer's true response.

Every few weeks (:data:`SCHEDULE`) the brand draws an audience among its customers (those who
signed up a while ago and, as far as the brand can tell, have not long gone), and splits it at
random: the treatment arm gets the campaign's offer, the control arm (``CONTROL_SHARE``) is held
out. For ``EFFECT_WEEKS`` the offer multiplies a treated customer's weekly churn hazard and
purchase rate by factors that depend on the customer (:func:`offer_multipliers`):

- ``coupon``: price-sensitive customers (a latent, higher for lower spending power and tier, and
  seen in how often they redeem coupons) stay and buy more;
- ``service_call``: customers with recent service tickets stay (the tickets drove their hazard);
- ``upgrade_offer``: customers with an ageing phone stay and buy;
- ``bundle``: customers with few ecosystem categories stay and buy;
- ``push``: customers who like pushes stay a little;
- whatever the offer, some customers do not react at all (``INDIFFERENT``), and a few react
  against a marketing offer (``AGAINST``: their hazard rises and they buy less; a service call
  is never resented).

The true effect of every offer on every audience customer of a campaign goes to
``truth/campaigns.parquet`` (:mod:`.weekly` projects the retention under both arms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from features.synth.config import (
    AUDIENCE_MIN_WEEKS,
    AUDIENCE_RISK_CAP,
    AUDIENCE_SHARE,
    CAMPAIGN_CHANNEL,
    CONTACT_GAP_WEEKS,
    CONTROL_SHARE,
    GONE_WEEKS_VISIBLE,
    OFFER_COST,
    RESPONSE_AGAINST_SHARE,
    RESPONSE_INDIFFERENT_SHARE,
    START,
)
from features.vocab import CONTROL, TREATMENT

if TYPE_CHECKING:
    from features.synth.hidden import HiddenState, Week
    from features.synth.population import Customers

RESPONDS, INDIFFERENT, AGAINST = 0, 1, 2
RESPONSE_NAMES = ("responds", "indifferent", "against")


class CampaignSpec(NamedTuple):
    """One campaign of the simulated history: its week and offer."""

    week: int
    offer: str

    @property
    def campaign_id(self) -> str:
        start = START + timedelta(days=7 * self.week)
        return f"CMP-{start:%Y%m%d}-{self.offer}"


# Every six weeks from late March 2024 to August 2025, so each campaign's outcome window (four
# months) ends inside the data; the coupon, the offer a retention plan sends most, runs most often.
SCHEDULE = tuple(
    CampaignSpec(week, offer)
    for week, offer in (
        (12, "coupon"), (18, "service_call"), (24, "upgrade_offer"), (30, "coupon"), (36, "bundle"),
        (42, "service_call"), (48, "coupon"), (54, "push"), (60, "upgrade_offer"), (66, "coupon"),
        (72, "bundle"), (78, "service_call"), (84, "coupon"),
    )
)  # fmt: skip
CAMPAIGN_AT_WEEK = {spec.week: spec for spec in SCHEDULE}


@dataclass
class Responses:
    """Each customer's hidden disposition towards offers."""

    price_sensitivity: np.ndarray  # (n,) in (0, 1)
    kind: np.ndarray  # (n,) RESPONDS, INDIFFERENT or AGAINST


def draw_responses(customers: Customers, rng: np.random.Generator) -> Responses:
    """Price sensitivity falls with spending power and tier. Who is put off by marketing is more
    often a customer who ignores the pushes (twice the mean share at no liking for them, none at
    full); who never reacts is drawn independently."""
    n = len(customers)
    logit = -0.2 - 0.5 * customers.value - 0.8 * (customers.tier - 1) + rng.normal(0, 0.4, n)
    against = rng.random(n) < RESPONSE_AGAINST_SHARE * 2 * (1 - customers.push_affinity)
    indifferent = rng.random(n) < RESPONSE_INDIFFERENT_SHARE
    kind = np.where(against, AGAINST, np.where(indifferent, INDIFFERENT, RESPONDS))
    return Responses(price_sensitivity=1 / (1 + np.exp(-logit)), kind=kind)


def offer_multipliers(
    offer: str, week: Week, customers: Customers, state: HiddenState, responses: Responses
) -> tuple[np.ndarray, np.ndarray]:
    """(hazard multiplier, purchase-rate multiplier) of ``offer`` for every customer this week."""
    n = len(customers)
    if offer == "coupon":
        ps = responses.price_sensitivity
        cut, lift = 0.85 * ps, 1.5 * ps
    elif offer == "service_call":
        cut, lift = 0.85 * state.tickets_recent / (state.tickets_recent + 0.4), np.zeros(n)
    elif offer == "upgrade_offer":
        ageing = np.clip((week.phone_age_years - 1.5) / 1.0, 0.0, 1.0)
        cut, lift = 0.7 * ageing, 1.0 * ageing
    elif offer == "bundle":
        few = (week.n_eco <= 2).astype(float)
        cut, lift = 0.6 * few, 0.8 * few
    elif offer == "push":
        cut, lift = 0.4 * customers.push_affinity, 0.3 * customers.push_affinity
    else:
        raise ValueError(f"unknown offer {offer!r}")
    hazard, purchases = 1.0 - cut, 1.0 + lift
    indifferent = responses.kind == INDIFFERENT
    against = (responses.kind == AGAINST) & (offer != "service_call")
    hazard = np.where(indifferent | (responses.kind == AGAINST), 1.0, hazard)
    purchases = np.where(indifferent | (responses.kind == AGAINST), 1.0, purchases)
    return np.where(against, 2.5, hazard), np.where(against, 0.6, purchases)


def draw_audience(
    week: Week, customers: Customers, state: HiddenState, hazard: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(rows of the audience, treated flag of each) among the customers who signed up
    ``AUDIENCE_MIN_WEEKS`` ago, are alive or gone too recently for the brand to know, and were in
    no campaign for ``CONTACT_GAP_WEEKS``: a retention
    campaign aims at customers at risk, so each is drawn with a chance that grows with the weekly
    churn ``hazard`` (the brand's churn list sees much of it), ``AUDIENCE_SHARE`` at the mean."""
    n = len(customers)
    member = customers.signup_week <= week.index - AUDIENCE_MIN_WEEKS
    visible = state.alive | (week.index - state.churn_week <= GONE_WEEKS_VISIBLE)
    rested = week.index - state.campaign_week >= CONTACT_GAP_WEEKS
    alive_hazard = hazard[state.alive & member]
    mean_hazard = alive_hazard.mean() if len(alive_hazard) else 1.0
    # the gone, whom the brand still counts, look at risk to it too
    risk = np.where(state.alive, hazard / mean_hazard, AUDIENCE_RISK_CAP)
    chance = np.clip(AUDIENCE_SHARE * np.sqrt(risk), AUDIENCE_SHARE / 4, 0.95)
    drawn = rng.random(n) < chance
    treated = rng.random(n) >= CONTROL_SHARE
    rows = np.flatnonzero(member & visible & rested & drawn)
    state.campaign_week[rows] = week.index
    return rows, treated[rows]


@dataclass
class CampaignLog:
    """The campaigns table and the true effects of a chunk, gathered campaign by campaign."""

    tables: list[pd.DataFrame] = field(default_factory=list)
    truths: list[pd.DataFrame] = field(default_factory=list)

    def add(self, spec: CampaignSpec, customer_id: np.ndarray, rows: np.ndarray, treated: np.ndarray) -> None:
        """The campaigns-table rows of one campaign."""
        ts = pd.Timestamp(START + timedelta(days=7 * spec.week))
        self.tables.append(
            pd.DataFrame(
                {
                    "customer_id": customer_id[rows],
                    "campaign_id": spec.campaign_id,
                    "ts": pd.Series(ts, index=range(len(rows))).astype("datetime64[us]"),
                    "arm": np.where(treated, TREATMENT, CONTROL).astype(object),
                    "offer": spec.offer,
                    "channel": CAMPAIGN_CHANNEL[spec.offer],
                    "cost": np.where(treated, OFFER_COST[spec.offer], 0.0),
                }
            )
        )

    def add_truth(self, frame: pd.DataFrame) -> None:
        """The true effects of every offer on one campaign's audience."""
        self.truths.append(frame)

    def table(self) -> pd.DataFrame:
        """The chunk's campaigns table."""
        if not self.tables:
            return empty_campaigns()
        return pd.concat(self.tables, ignore_index=True)

    def truth(self) -> pd.DataFrame:
        """The chunk's ``truth/campaigns`` rows."""
        return pd.concat(self.truths, ignore_index=True) if self.truths else pd.DataFrame()


def empty_campaigns() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series(dtype=object),
            "campaign_id": pd.Series(dtype=object),
            "ts": pd.Series(dtype="datetime64[us]"),
            "arm": pd.Series(dtype=object),
            "offer": pd.Series(dtype=object),
            "channel": pd.Series(dtype=object),
            "cost": pd.Series(dtype=float),
        }
    )


@dataclass
class Marketing:
    """What the weeks need for campaigns: the customers' responses, the log and a generator of its
    own (so the campaign draws do not shift the other draws of the simulation)."""

    responses: Responses
    log: CampaignLog
    rng: np.random.Generator
