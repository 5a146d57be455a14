"""The uplift model as served: each customer's expected change in retention if sent an offer.

:class:`UpliftModel` is the MLflow pyfunc that ``crm train uplift`` logs and registers
(``models:/uplift@champion``); a serving process loads it without training code. It holds one
X-learner per offer (Kunzel et al. 2019), learned from that offer's randomised campaigns, as
LightGBM text models:

- ``mu_control``: the chance of being retained without the offer (the control arm's outcome);
- ``tau_control`` and ``tau_treated``: the effect as learnt from each arm's imputed effects;

and the effect served is ``tau(x) = g tau_control(x) + (1 - g) tau_treated(x)`` with ``g`` the
share of treated customers the learner was trained on (in a randomised campaign the propensity
is that constant), as in causalml's ``BaseXLearner.predict``.

``predict`` takes the snapshot rows and ``params={"offer": ...}`` (the model's first offer by
default) and returns the uplift of the chance of being retained within the campaign outcome
window (:mod:`features.campaigns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow.pyfunc
import numpy as np
import pandas as pd

from features.errors import UserError
from serving.encoding import feature_matrix


class UnknownOffer(UserError):
    """An offer the uplift model has no learner for (a valid offer, not learnt: the service's 404)."""


@dataclass
class OfferLearner:
    """One offer's X-learner as LightGBM text models and the treated share it was trained on."""

    offer: str
    treated_share: float
    cost: float  # the mean cost of the offer per treated customer in the campaigns learnt from
    mu_control_text: str
    tau_control_text: str
    tau_treated_text: str


class UpliftModel(mlflow.pyfunc.PythonModel):
    """Per-offer X-learners over the snapshot's columns (see the module's docstring)."""

    def __init__(
        self,
        learners: list[OfferLearner],
        features: list[str],
        categorical_levels: dict[str, list[str]],
        outcome_offset_days: int,
        outcome_days: int,
        num_threads: int = 2,
    ) -> None:
        self.learners = {learner.offer: learner for learner in learners}
        self.features = list(features)
        self.categorical_levels = {k: list(v) for k, v in categorical_levels.items()}
        self.outcome_offset_days = int(outcome_offset_days)
        self.outcome_days = int(outcome_days)
        self.num_threads = num_threads
        self._boosters: dict | None = None

    # -- MLflow pyfunc -------------------------------------------------------------------------
    def load_context(self, context) -> None:  # noqa: D102
        self.boosters()

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:  # noqa: D102
        offer = (params or {}).get("offer") or self.offers[0]
        return self.uplift(model_input, offer)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_boosters"] = None  # rebuilt from the text models after unpickling
        return state

    # -- scoring -------------------------------------------------------------------------------
    @property
    def offers(self) -> list[str]:
        """The offers the model has a learner for."""
        return list(self.learners)

    def boosters(self) -> dict:
        """``{offer: (mu_control, tau_control, tau_treated)}`` LightGBM boosters, built once."""
        if getattr(self, "_boosters", None) is None:
            import lightgbm as lgb

            self._boosters = {
                offer: tuple(
                    lgb.Booster(model_str=text)
                    for text in (learner.mu_control_text, learner.tau_control_text, learner.tau_treated_text)
                )
                for offer, learner in self.learners.items()
            }
        return self._boosters

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, features) float matrix of a snapshot; an unseen category level is missing."""
        return feature_matrix(frame, self.features, self.categorical_levels, "uplift")

    def check_offer(self, offer: str) -> None:
        """Raise :class:`UnknownOffer` unless the model has learnt ``offer``."""
        if offer not in self.learners:
            raise UnknownOffer(
                f"The uplift model has no learner for the offer {offer!r}: it knows {', '.join(self.offers)}"
                " (an offer needs two randomised campaigns to learn from)."
            )

    def _learner(self, offer: str) -> tuple:
        self.check_offer(offer)
        return self.boosters()[offer]

    def uplift(self, frame: pd.DataFrame, offer: str) -> np.ndarray:
        """(rows,) expected change in the chance of being retained if the customer gets ``offer``."""
        return self.uplift_matrix(self.matrix(frame), offer)

    def uplift_matrix(self, x: np.ndarray, offer: str) -> np.ndarray:
        """:meth:`uplift` of an encoded (rows, features) matrix."""
        _, tau_control, tau_treated = self._learner(offer)
        g = self.learners[offer].treated_share
        t = self.num_threads
        return g * tau_control.predict(x, num_threads=t) + (1 - g) * tau_treated.predict(x, num_threads=t)

    def retention_without_offer(self, frame: pd.DataFrame, offer: str) -> np.ndarray:
        """(rows,) the chance of being retained without the offer (its campaigns' control arms)."""
        mu_control, _, _ = self._learner(offer)
        return mu_control.predict(self.matrix(frame), num_threads=self.num_threads)
