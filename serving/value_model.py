"""The value model as served: each customer's expected net revenue over a horizon if they stay.

:class:`ValueModel` is the MLflow pyfunc that ``crm train value`` logs and registers
(``models:/value@champion``); a serving process loads it without training code. It has two parts:

- a *stay* classifier: the chance that the customer is still active over the horizon (any
  purchase or engaged event in it);
- a *spend* regressor: the net revenue of the horizon among customers who stayed.

``predict`` returns the spend part, the forecast *if the customer stays*: the value that a churn
probability multiplies into a value at risk. :meth:`ValueModel.expected_revenue` multiplies in the
stay probability, the forecast compared with what customers actually spent.

Both parts read the snapshot's columns plus a few columns derived from them here: rates that do
not grow with the length of the history, and the buy-till-you-die quantities of :class:`BgNbd`
(Fader, Hardie and Lee 2005) and :class:`GammaGamma` (Fader and Hardie 2013), whose closed forms
live here so that serving needs no training code (the fits are in ``training.btyd``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow.pyfunc
import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from features.errors import UserError
from serving.encoding import feature_matrix

if TYPE_CHECKING:
    from serving.registry import LoadedModel

# The snapshot columns the derived columns are computed from.
BTYD_INPUTS = ("purchases_total", "days_since_first_purchase", "purchase_span_days")
SPEND_INPUTS = ("purchases_365d", "net_revenue_365d")
# The columns :func:`derived_columns` adds, in order.
DERIVED_COLUMNS = (
    "btyd_p_alive",
    "btyd_expected_purchases",
    "gg_expected_order_value",
    "btyd_expected_revenue",
    "order_value_365d",
    "revenue_per_day_365d",
    "purchases_per_day_365d",
    "recency_over_age",
)


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD: purchases follow a Poisson process of rate ``lambda ~ Gamma(r, alpha)`` until the
    customer drops out, with chance ``p ~ Beta(a, b)`` after each purchase. Time is in days.

    A customer is summarised by ``x`` (repeat purchases), ``t_x`` (days from the first purchase to
    the last) and ``T`` (days from the first purchase to the as-of date).
    """

    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """The chance that the customer is still active at the as-of date (FHL 2005, eq. 11)."""
        x, t_x, T = _floats(x, t_x, T)
        ratio = self._dropout_odds(x, t_x, T)
        return 1.0 / (1.0 + ratio)

    def expected_purchases(self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Expected purchases in the ``t`` days after the as-of date (FHL 2005, eq. 10).

        The hypergeometric term is taken through Pfaff's transformation, so the factor
        ``((alpha + T) / (alpha + T + t)) ** (r + x)`` cancels exactly instead of multiplying an
        overflowing series by an underflowing power for frequent buyers.
        """
        x, t_x, T = _floats(x, t_x, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        tail = hyp2f1(r + x, a - 1.0, a + b + x - 1.0, -t / (alpha + T))
        bought = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail)
        out = bought / (1.0 + self._dropout_odds(x, t_x, T))
        return np.nan_to_num(np.maximum(out, 0.0), nan=0.0, posinf=0.0)

    def population_purchases(self, t: float) -> float:
        """Expected purchases of a new customer in their first ``t`` days (FHL 2005, eq. 7)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        head = (a + b - 1.0) / (a - 1.0)
        return float(head * (1.0 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1.0, t / (alpha + t))))

    def _dropout_odds(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Odds that a customer with repeat purchases dropped out after the last one."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a) - np.log(b + x - 1.0) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(x > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma: a customer's spend per purchase is ``Gamma(p, nu)`` with ``nu ~ Gamma(q, gamma)``,
    independent of how often they buy."""

    p: float
    q: float
    gamma: float

    def population_mean(self) -> float:
        """The mean spend per purchase over customers: ``p * gamma / (q - 1)``."""
        return self.p * self.gamma / (self.q - 1.0)

    def expected_spend(self, x: np.ndarray, mean_value: np.ndarray) -> np.ndarray:
        """A customer's expected spend per purchase from ``x`` purchases of mean value ``mean_value``
        (Fader and Hardie 2013, eq. 5): a weighted mean of the population's and the customer's own."""
        x, mean_value = _floats(x, mean_value)
        mean_value = np.where(x > 0, np.nan_to_num(mean_value), 0.0)
        weight = self.p * x / (self.p * x + self.q - 1.0)
        return (1.0 - weight) * self.population_mean() + weight * mean_value


def _floats(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def btyd_summary(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) from snapshot columns: repeat purchases, purchase span and days since the first
    purchase (0, 0, 0 for a customer who never bought)."""
    missing = [c for c in BTYD_INPUTS if c not in frame.columns]
    if missing:
        raise UserError(f"The value model needs the columns {', '.join(missing)}, which the input lacks.")
    x = np.maximum(frame["purchases_total"].to_numpy(dtype=float) - 1.0, 0.0)
    T = np.nan_to_num(frame["days_since_first_purchase"].to_numpy(dtype=float, na_value=np.nan))
    t_x = np.nan_to_num(frame["purchase_span_days"].to_numpy(dtype=float, na_value=np.nan))
    return x, np.minimum(t_x, T), T


def derived_columns(frame: pd.DataFrame, bgnbd: BgNbd, gamma_gamma: GammaGamma, horizon_days: int) -> dict:
    """:data:`DERIVED_COLUMNS` from the snapshot: columns that keep their meaning whatever the
    length of the history (the BG/NBD and Gamma-Gamma forecasts, purchase rates per day of the
    history the 365-day figures could cover). Null for a customer who never bought."""
    x, t_x, T = btyd_summary(frame)
    bought = frame["purchases_total"].to_numpy(dtype=float) > 0
    purchases = frame["purchases_365d"].to_numpy(dtype=float)
    revenue = frame["net_revenue_365d"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        order_value = np.where(purchases > 0, revenue / purchases, np.nan)
    observed = np.minimum(T, 365.0) + 1.0
    expected = bgnbd.expected_purchases(horizon_days, x, t_x, T)
    spend = gamma_gamma.expected_spend(purchases, np.maximum(np.nan_to_num(order_value), 0.0))
    columns = {
        "btyd_p_alive": bgnbd.p_alive(x, t_x, T),
        "btyd_expected_purchases": expected,
        "gg_expected_order_value": spend,
        "btyd_expected_revenue": expected * spend,
        "order_value_365d": order_value,
        "revenue_per_day_365d": revenue / observed,
        "purchases_per_day_365d": purchases / observed,
        "recency_over_age": (T - t_x) / (T + 1.0),
    }
    return {name: np.where(bought, values, np.nan) for name, values in columns.items()}


class ValueModel(mlflow.pyfunc.PythonModel):
    """Stay classifier and spend regressor (LightGBM text models) over snapshot and derived columns.

    ``predict`` returns the forecast if the customer stays (see the module's docstring).
    """

    def __init__(
        self,
        stay_booster_text: str,
        spend_booster_text: str,
        features: list[str],
        categorical_levels: dict[str, list[str]],
        bgnbd: BgNbd,
        gamma_gamma: GammaGamma,
        horizon_days: int,
        num_threads: int = 2,
    ) -> None:
        self.stay_booster_text = stay_booster_text
        self.spend_booster_text = spend_booster_text
        self.features = list(features)
        self.categorical_levels = {k: list(v) for k, v in categorical_levels.items()}
        self.bgnbd = bgnbd
        self.gamma_gamma = gamma_gamma
        self.horizon_days = int(horizon_days)
        self.num_threads = num_threads
        self._boosters = None

    # -- MLflow pyfunc -------------------------------------------------------------------------
    def load_context(self, context) -> None:  # noqa: D102
        self.boosters()

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:  # noqa: D102
        return self.forecast_if_stays(model_input)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_boosters"] = None  # rebuilt from the text models after unpickling
        return state

    # -- scoring -------------------------------------------------------------------------------
    def boosters(self):
        """(stay, spend) LightGBM boosters, built once from their text models."""
        if getattr(self, "_boosters", None) is None:
            import lightgbm as lgb

            self._boosters = (
                lgb.Booster(model_str=self.stay_booster_text),
                lgb.Booster(model_str=self.spend_booster_text),
            )
        return self._boosters

    def with_derived(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The snapshot with the derived columns from this model's fits (see :func:`derived_columns`)."""
        missing = [c for c in BTYD_INPUTS + SPEND_INPUTS if c not in frame.columns]
        if missing:
            raise UserError(f"The value model needs the columns {', '.join(missing)}, which the input lacks.")
        return frame.assign(**derived_columns(frame, self.bgnbd, self.gamma_gamma, self.horizon_days))

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, features) float matrix of a snapshot, its derived columns computed here."""
        return self.encode(self.with_derived(frame))

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, features) float matrix of a frame that has every feature column; categorical
        strings become their level's code (an unseen level is missing)."""
        return feature_matrix(frame, self.features, self.categorical_levels, "value")

    def stay_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """The chance that each customer is still active over the horizon."""
        return self.boosters()[0].predict(self.matrix(frame), num_threads=self.num_threads)

    def forecast_if_stays(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected net revenue over the horizon of each customer, if the customer stays."""
        return self._spend(self.matrix(frame))

    def expected_revenue(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected net revenue over the horizon: the stay probability times the forecast if staying."""
        x = self.matrix(frame)
        stay = self.boosters()[0].predict(x, num_threads=self.num_threads)
        return stay * self._spend(x)

    def _spend(self, x: np.ndarray) -> np.ndarray:
        # the Tweedie regressor predicts the mean revenue itself (its link is the log)
        return self.boosters()[1].predict(x, num_threads=self.num_threads)


def load_value_model(model_uri: str | None, tracking_uri: str | None) -> LoadedModel | None:
    """The value model behind ``model_uri``, pinned, or None when the registry has no such model
    (the lists then value customers by their past-year revenue, and say so). An unreachable
    registry or unreadable files are errors, not a missing model."""
    from serving.registry import load_registered

    return load_registered(model_uri, tracking_uri, "forecast_if_stays", "the CRM value model", optional=True)
