"""Buy-till-you-die models fitted by maximum likelihood: BG/NBD and Gamma-Gamma.

- BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): the number and
  timing of repeat purchases, and the chance that a customer has dropped out;
- Gamma-Gamma (Fader and Hardie 2013, "The Gamma-Gamma model of monetary value"): the spend per
  purchase, shrunk from the customer's own mean towards the population's.

Both are fitted here with numpy and scipy on the log of their parameters (so that they stay
positive); the fitted values are :class:`serving.value_model.BgNbd` and
:class:`serving.value_model.GammaGamma`, whose closed forms the served value model also uses.
Together they are the ``bgnbd_gamma_gamma`` baseline of ``crm train value``:
expected purchases over the horizon times the expected spend per purchase.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

from features.errors import UserError
from features.families import DUCKDB
from serving.value_model import BgNbd, GammaGamma


def bgnbd_log_likelihood(params: BgNbd, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Each customer's log-likelihood under BG/NBD (FHL 2005, eq. 6, in logs)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    head += gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    alive = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.log(a) - np.log(b + x - 1.0) - (r + x) * np.log(alpha + t_x)
    dropped = np.where(x > 0, dropped, -np.inf)
    return head + np.logaddexp(alive, dropped)


def gamma_gamma_log_likelihood(params: GammaGamma, x: np.ndarray, mean_value: np.ndarray) -> np.ndarray:
    """Each repeat buyer's log-likelihood of their mean spend under Gamma-Gamma (FH 2013, eq. 3)."""
    p, q, g = params.p, params.q, params.gamma
    x, m = np.asarray(x, dtype=np.float64), np.asarray(mean_value, dtype=np.float64)
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(g)
        + (p * x - 1.0) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + m * x)
    )


def _fit(negative_mean_ll, start: np.ndarray) -> np.ndarray:
    """Minimise a mean negative log-likelihood over log-parameters; returns the log-parameters."""
    best = minimize(negative_mean_ll, start, method="L-BFGS-B")
    # a second start from the first optimum: L-BFGS-B with numerical gradients can stop early
    again = minimize(negative_mean_ll, best.x, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-10})
    result = again if again.fun <= best.fun else best
    if not np.all(np.isfinite(result.x)):
        raise UserError("The buy-till-you-die fit did not converge: the purchase history is too short.")
    return result.x


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BgNbd:
    """BG/NBD parameters by maximum likelihood over customers (x, t_x, T in days)."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if len(x) < 10 or not (x > 0).any():
        raise UserError("A BG/NBD fit needs at least ten customers and some repeat purchases.")
    scale = max(float(np.mean(T)), 1.0)  # the rate's scale: a start near the data's time unit

    def loss(theta: np.ndarray) -> float:
        r, alpha, a, b = np.exp(theta)
        value = -np.mean(bgnbd_log_likelihood(BgNbd(r, alpha, a, b), x, t_x, T))
        return float(value) if np.isfinite(value) else 1e12

    theta = _fit(loss, np.log([1.0, scale, 1.0, 3.0]))
    return BgNbd(*map(float, np.exp(theta)))


def fit_gamma_gamma(x: np.ndarray, mean_value: np.ndarray) -> GammaGamma:
    """Gamma-Gamma parameters by maximum likelihood over customers with ``x > 0`` purchases and a
    positive mean spend (the others carry no information about spend)."""
    x, m = np.asarray(x, dtype=np.float64), np.asarray(mean_value, dtype=np.float64)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    if keep.sum() < 10:
        raise UserError("A Gamma-Gamma fit needs at least ten customers with purchases of positive value.")
    x, m = x[keep], m[keep]

    def loss(theta: np.ndarray) -> float:
        p, q, g = np.exp(theta)
        value = -np.mean(gamma_gamma_log_likelihood(GammaGamma(p, q, g), x, m))
        return float(value) if np.isfinite(value) else 1e12

    theta = _fit(loss, np.log([2.0, 3.0, float(np.mean(m))]))
    p, q, g = map(float, np.exp(theta))
    if q <= 1.0:  # the population mean p * gamma / (q - 1) needs q > 1
        raise UserError("The Gamma-Gamma fit has no finite mean spend (q <= 1): too few repeat buyers.")
    return GammaGamma(p, q, g)


def transaction_summary(con: duckdb.DuckDBPyConnection, as_of: datetime) -> pd.DataFrame:
    """Per customer with a purchase before ``as_of``, the textbook BTYD summary from the events.

    A transaction is a day with a purchase (several orders of one day are one transaction, as in
    Fader and Hardie's CDNOW analyses). Columns: ``frequency`` (repeat transactions), ``recency``
    (days from the first transaction to the last), ``age`` (days from the first to ``as_of``),
    ``monetary`` (mean purchase amount of the repeat transactions, 0 without one) and
    ``net_share`` (the customer's net revenue over gross purchases, for returns).
    """
    t = DUCKDB.ts(as_of)
    return con.execute(
        f"""
        WITH days AS (
          SELECT customer_id, date_trunc('day', ts) AS day,
                 sum(amount) FILTER (WHERE event_type = 'purchase') AS spent,
                 count(*) FILTER (WHERE event_type = 'purchase') AS orders
          FROM events WHERE ts < {t} AND event_type = 'purchase' AND customer_id IS NOT NULL
          GROUP BY 1, 2
        ), ranked AS (
          SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY day) AS n,
                 min(day) OVER (PARTITION BY customer_id) AS first_day
          FROM days
        )
        SELECT customer_id,
               CAST(count(*) - 1 AS DOUBLE) AS frequency,
               CAST(date_diff('day', min(day), max(day)) AS DOUBLE) AS recency,
               {DUCKDB.days_before("min(first_day)", as_of)} AS age,
               coalesce(avg(spent) FILTER (WHERE n > 1), 0.0) AS monetary
        FROM ranked GROUP BY customer_id ORDER BY customer_id
        """
    ).df()


def net_share(con: duckdb.DuckDBPyConnection, as_of: datetime) -> float:
    """The population's net revenue over gross purchases before ``as_of`` (1.0 without returns)."""
    gross, returned = con.execute(
        "SELECT coalesce(sum(amount) FILTER (WHERE event_type = 'purchase'), 0),"
        " coalesce(sum(amount) FILTER (WHERE event_type = 'return'), 0)"
        f" FROM events WHERE ts < {DUCKDB.ts(as_of)}"
    ).fetchone()
    return float((gross - returned) / gross) if gross > 0 else 1.0


def bgnbd_gamma_gamma_forecast(
    con: duckdb.DuckDBPyConnection, as_of: datetime, horizon_days: int, customers: pd.Series
) -> tuple[np.ndarray, BgNbd, GammaGamma]:
    """The BTYD baseline: each customer's expected net revenue over the horizon after ``as_of``.

    Fitted on the transactions before ``as_of``: BG/NBD expected purchases times Gamma-Gamma
    expected spend per purchase, times the population's net share (returns). Customers in
    ``customers`` without a purchase get 0.
    """
    summary = transaction_summary(con, as_of)
    bgnbd = fit_bgnbd(summary["frequency"], summary["recency"], summary["age"])
    gg = fit_gamma_gamma(summary["frequency"], summary["monetary"])
    purchases = bgnbd.expected_purchases(
        horizon_days, summary["frequency"], summary["recency"], summary["age"]
    )
    spend = gg.expected_spend(summary["frequency"], summary["monetary"])
    value = pd.Series(purchases * spend * net_share(con, as_of), index=summary["customer_id"].to_numpy())
    forecast = value.reindex(customers.to_numpy()).fillna(0.0).to_numpy()
    return forecast, bgnbd, gg
