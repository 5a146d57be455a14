"""Forecast value: the BG/NBD and Gamma-Gamma fits, and the value job on the tiny preset."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from features.contract import open_validated
from features.errors import UserError
from features.snapshot import build_snapshot
from serving.value_model import BgNbd, GammaGamma, ValueModel
from tests.training.bare import assert_portable, load_in_bare_process
from training.btyd import bgnbd_log_likelihood, fit_bgnbd, fit_gamma_gamma, gamma_gamma_log_likelihood
from training.value import ValueTrainConfig, run, schedule, value_metrics

TRUE_BGNBD = BgNbd(r=0.5, alpha=20.0, a=0.8, b=2.5)
TRUE_GG = GammaGamma(p=6.0, q=4.0, gamma=15.0)


def simulate_bgnbd(params: BgNbd, n: int, T: float, future: float, seed: int = 0):
    """Customers drawn from BG/NBD, first purchase at day 0, observed to ``T``: (x, t_x, T, purchases
    in the ``future`` days after ``T``)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    drop = rng.beta(params.a, params.b, n)
    x, t_x, after = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        t, alive = 0.0, True
        while alive:
            t += rng.exponential(1.0 / lam[i])
            if t > T + future:
                break
            if t <= T:
                x[i], t_x[i] = x[i] + 1, t
            else:
                after[i] += 1
            alive = rng.random() > drop[i]
    return x, t_x, np.full(n, T), after


@pytest.fixture(scope="module")
def bgnbd_sample():
    return simulate_bgnbd(TRUE_BGNBD, 4000, T=270.0, future=180.0)


@pytest.fixture(scope="module")
def bgnbd_fit(bgnbd_sample) -> BgNbd:
    x, t_x, T, _ = bgnbd_sample
    return fit_bgnbd(x, t_x, T)


def _mean_ll_gradient(loss, theta: np.ndarray, step: float = 1e-4) -> np.ndarray:
    return np.array([(loss(theta + e) - loss(theta - e)) / (2 * step) for e in np.eye(len(theta)) * step])


def test_bgnbd_maximises_the_likelihood_and_recovers_the_parameters(bgnbd_sample, bgnbd_fit):
    x, t_x, T, _ = bgnbd_sample

    def mean_ll(theta: np.ndarray) -> float:
        return float(np.mean(bgnbd_log_likelihood(BgNbd(*np.exp(theta)), x, t_x, T)))

    theta = np.log([bgnbd_fit.r, bgnbd_fit.alpha, bgnbd_fit.a, bgnbd_fit.b])
    assert np.abs(_mean_ll_gradient(mean_ll, theta)).max() < 1e-4  # a stationary point
    for e in np.eye(4) * 0.05:  # and a maximum: every nearby point is lower
        assert mean_ll(theta + e) < mean_ll(theta) and mean_ll(theta - e) < mean_ll(theta)
    assert mean_ll(theta) > mean_ll(np.log([TRUE_BGNBD.r, TRUE_BGNBD.alpha, TRUE_BGNBD.a, TRUE_BGNBD.b]))
    assert bgnbd_fit.r == pytest.approx(TRUE_BGNBD.r, rel=0.25)
    assert bgnbd_fit.alpha == pytest.approx(TRUE_BGNBD.alpha, rel=0.35)


def test_bgnbd_expected_purchases_match_the_simulated_future(bgnbd_sample, bgnbd_fit):
    x, t_x, T, after = bgnbd_sample
    expected = bgnbd_fit.expected_purchases(180.0, x, t_x, T)
    assert expected.sum() == pytest.approx(after.sum(), rel=0.1)
    # and customer by customer they rank the future: the frequent recent buyers buy most
    top = expected >= np.quantile(expected, 0.9)
    assert after[top].mean() > 3 * after.mean()


def test_expected_purchases_rise_with_frequency_and_fall_with_time_since_the_last():
    model = TRUE_BGNBD
    x = np.arange(0, 20, dtype=float)
    T = np.full_like(x, 300.0)
    recent = model.expected_purchases(90.0, x, T, T)  # just bought
    assert (np.diff(recent) > 0).all()
    t_x = np.linspace(0, 300, 31)
    by_recency = model.expected_purchases(90.0, np.full_like(t_x, 5.0), t_x, np.full_like(t_x, 300.0))
    assert (np.diff(by_recency) > 0).all()
    alive = model.p_alive(np.full_like(t_x, 5.0), t_x, np.full_like(t_x, 300.0))
    # just bought: alive unless they dropped out at that very purchase, chance a / (b + x - 1)
    assert (np.diff(alive) > 0).all() and alive[-1] == pytest.approx(1 / (1 + model.a / (model.b + 4.0)))
    assert model.p_alive(np.array([0.0]), np.array([0.0]), np.array([300.0]))[0] == 1.0  # no repeat yet


def test_the_transformed_hypergeometric_equals_the_textbook_form():
    m = BgNbd(0.25, 30.0, 0.8, 2.4)  # a < 1, as fitted on CDNOW
    x, t_x, T, t = np.array([0.0, 1, 5, 20]), np.array([0.0, 100, 180, 199]), np.full(4, 200.0), 181.0
    r, al, a, b = m.r, m.alpha, m.a, m.b
    head = (a + b + x - 1) / (a - 1)
    textbook = head * (
        1 - ((al + T) / (al + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (al + T + t))
    )
    textbook /= 1 + (x > 0) * a / (b + x - 1) * ((al + T) / (al + t_x)) ** (r + x)
    np.testing.assert_allclose(m.expected_purchases(t, x, t_x, T), textbook, rtol=1e-8)
    # a new customer's first purchase is not repeated: x = 0, T = 0 gives the population curve
    assert m.expected_purchases(t, np.zeros(1), np.zeros(1), np.zeros(1))[0] == pytest.approx(
        m.population_purchases(t)
    )


def test_gamma_gamma_maximises_the_likelihood_and_shrinks_towards_the_population():
    rng = np.random.default_rng(1)
    n = 3000
    nu = rng.gamma(TRUE_GG.q, 1.0 / TRUE_GG.gamma, n)
    x = rng.integers(1, 8, n).astype(float)
    mean_value = np.array([rng.gamma(TRUE_GG.p, 1.0 / v, int(k)).mean() for v, k in zip(nu, x, strict=True)])
    fit = fit_gamma_gamma(x, mean_value)

    def mean_ll(theta: np.ndarray) -> float:
        return float(np.mean(gamma_gamma_log_likelihood(GammaGamma(*np.exp(theta)), x, mean_value)))

    theta = np.log([fit.p, fit.q, fit.gamma])
    assert np.abs(_mean_ll_gradient(mean_ll, theta)).max() < 1e-4
    assert fit.population_mean() == pytest.approx(TRUE_GG.population_mean(), rel=0.1)
    spend = fit.expected_spend(np.array([1.0, 10.0, 100.0]), np.full(3, 200.0))
    assert fit.population_mean() < spend[0] < spend[1] < spend[2] < 200.0  # more purchases, less shrinkage
    assert fit.expected_spend(np.zeros(1), np.zeros(1))[0] == pytest.approx(fit.population_mean())


def test_fits_without_enough_data_are_clear_errors():
    with pytest.raises(UserError, match="BG/NBD"):
        fit_bgnbd(np.zeros(50), np.zeros(50), np.full(50, 100.0))
    with pytest.raises(UserError, match="Gamma-Gamma"):
        fit_gamma_gamma(np.zeros(5), np.zeros(5))


def test_value_metrics_relations():
    actual = np.array([0.0, 0, 0, 0, 0, 0, 0, 0, 10, 90])
    perfect = value_metrics(actual, actual)
    assert perfect["spearman"] == pytest.approx(1.0) and perfect["total_relative_error"] == 0.0
    assert perfect["top_decile_revenue_share"] == pytest.approx(0.9)  # the top 10% is one customer
    reverse = value_metrics(-actual + 100, actual)
    assert reverse["spearman"] < 0 and reverse["top_decile_revenue_share"] == 0.0
    assert value_metrics(actual * 2, actual)["total_relative_error"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# the job on the tiny preset

AS_OF, HORIZON = "2025-09-01", 90


@pytest.fixture(scope="module")
def value_run(tiny_data: Path, store, tmp_path_factory: pytest.TempPathFactory):
    from training.registry import promote

    metrics_json = tmp_path_factory.mktemp("value") / "metrics.json"
    cfg = ValueTrainConfig(
        data=tiny_data, as_of=AS_OF, horizon_days=HORIZON, register_model=True, metrics_json=metrics_json,
        store=store,
    )  # fmt: skip
    result = run(cfg)
    promote("value", store=store)
    result.extra["metrics_json"] = metrics_json
    return result


@pytest.fixture(scope="module")
def model(value_run) -> ValueModel:
    return mlflow.pyfunc.load_model(value_run.model_uri).unwrap_python_model()


def test_the_metrics_json_has_the_model_and_both_baselines(value_run):
    doc = json.loads(Path(value_run.extra["metrics_json"]).read_text())
    keys = {"spearman", "top_decile_revenue_share", "total_relative_error"}
    assert doc["model"] == "value" and set(doc["metrics"]) == keys
    assert set(doc["baselines"]) == {"bgnbd_gamma_gamma", "last_year_spend"}
    assert all(set(values) == keys for values in doc["baselines"].values())
    assert doc["registered_version"] == value_run.registered_version


def test_the_model_ranks_revenue_better_than_the_last_year(value_run):
    m, last = value_run.metrics, value_run.baselines["last_year_spend"]
    assert m["spearman"] > last["spearman"]
    assert m["top_decile_revenue_share"] > 0.1  # better than a random tenth
    # the truth: among customers alive through the window, the forecast if staying ranks revenue
    assert value_run.extra["alive_spearman"] > value_run.extra["alive_last_year_spend_spearman"]


def test_training_targets_end_by_the_holdout(value_run):
    (train,) = value_run.as_of_dates["train"]
    assert (pd.Timestamp(AS_OF) - pd.Timestamp(train)).days == HORIZON


def test_the_served_model_reads_a_snapshot(model, tiny_data: Path):
    snapshot = build_snapshot(open_validated(tiny_data), "2026-01-01")
    loaded = mlflow.pyfunc.load_model("models:/value@champion")
    forecast = np.asarray(loaded.predict(snapshot))
    assert forecast.shape == (len(snapshot),) and (forecast >= 0).all() and np.isfinite(forecast).all()
    np.testing.assert_allclose(forecast, model.forecast_if_stays(snapshot))
    expected = model.expected_revenue(snapshot)
    assert (expected <= forecast + 1e-9).all()  # staying is a chance: the expectation is lower
    # a customer quiet for half a year is less likely to stay than one active last week
    quiet = model.stay_probability(snapshot[snapshot["days_since_last_event"] > 180]).mean()
    recent = model.stay_probability(snapshot[snapshot["days_since_last_event"] < 7]).mean()
    assert quiet < recent


def test_promote_value_is_a_known_model(value_run, store):
    from training.registry import get_alias

    assert get_alias("value", "champion", store=store).version == value_run.registered_version


def test_the_value_champion_loads_where_the_repository_is_not(value_run, store, tmp_path: Path):
    assert_portable(
        load_in_bare_process("models:/value@champion", store.tracking, tmp_path), "lightgbm", "scipy"
    )


def test_the_value_version_is_described_in_prose(value_run, store):
    mlflow.set_tracking_uri(store.tracking)
    version = mlflow.MlflowClient().get_model_version("value", value_run.registered_version)
    assert version.description.startswith("Forecast value model") and "{" not in version.description
    assert f"is {value_run.metrics['spearman']:.4f}" in version.description
    assert version.tags["holdout_metric"] == "spearman"


def test_too_short_a_history_is_a_clear_error():
    cfg = ValueTrainConfig(data=Path("."), as_of="2024-03-01", horizon_days=90)
    with pytest.raises(UserError, match="Not enough history"):
        schedule(cfg, pd.Timestamp("2024-01-01").to_pydatetime())


def test_the_served_value_model_imports_no_training_code():
    source = Path(__file__).resolve().parents[2] / "serving" / "value_model.py"
    names = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
    assert not names & {"training", "crm"}
