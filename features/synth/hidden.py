"""What the weekly simulation carries from week to week (:class:`HiddenState`) and how one week
looks at the start (:class:`Week`): apart from :mod:`.weekly`, so that its steps in other modules
(:mod:`.campaigns`) can take them without importing the simulation back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    # the offer of the latest campaign a customer was treated in, while it lasts
    hazard_mult: np.ndarray  # multiplies the weekly churn hazard
    purchase_mult: np.ndarray  # multiplies the purchase rate and browsing (shopping)
    effect_until: np.ndarray  # the first week without it
    campaign_week: np.ndarray  # the start of the latest campaign whose audience held the customer

    def effects(self, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(hazard, purchase-rate) multipliers in week ``w`` (1 where no offer is in force)."""
        on = w < self.effect_until
        return np.where(on, self.hazard_mult, 1.0), np.where(on, self.purchase_mult, 1.0)


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
