"""The uplift model: its metrics, its campaign split, its served form and a smoke train on tiny."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from features.campaigns import Campaign
from features.errors import UserError
from training.uplift import (
    UpliftParams,
    auuc,
    export_learner,
    fit_x_learner,
    qini_coefficient,
    qini_curve,
    split_campaigns,
    uplift_at,
)


def randomised(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, treated, retained, true effect): half the customers gain 0.3 from the offer."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    tau = np.where(x[:, 0] > 0, 0.3, 0.0)
    treated = rng.random(n) < 0.7
    base = 1 / (1 + np.exp(-x[:, 1]))
    retained = (rng.random(n) < np.clip(base * 0.6 + tau * treated, 0, 1)).astype(int)
    return x, treated, retained, tau


def test_qini_and_auuc_are_causalmls_per_customer():
    from causalml.metrics import auuc_score, qini_score

    x, treated, retained, tau = randomised()
    score = tau + np.random.default_rng(1).normal(0, 0.2, len(tau))
    frame = pd.DataFrame({"y": retained, "w": treated.astype(int), "model": score})
    n = len(frame)
    assert qini_coefficient(score, treated, retained) == pytest.approx(
        qini_score(frame, normalize=False)["model"] / n, rel=1e-3
    )
    assert auuc(score, treated, retained) == pytest.approx(
        auuc_score(frame, normalize=False)["model"] / n, rel=1e-3
    )


def test_a_better_ranking_has_a_higher_qini():
    x, treated, retained, tau = randomised()
    noise = np.random.default_rng(2).normal(0, 1, len(tau))
    truth, random = qini_coefficient(tau, treated, retained), qini_coefficient(noise, treated, retained)
    assert truth > qini_coefficient(tau + noise, treated, retained) > random
    assert abs(random) < 0.3 * truth
    curve = qini_curve(tau, treated, retained)
    assert curve[0] == 0 and len(curve) == len(tau) + 1
    assert uplift_at(tau, treated, retained, 0.3) == pytest.approx(0.3, abs=0.06)


def campaign(cid: str, offer: str, month: int) -> Campaign:
    return Campaign(cid, offer, datetime(2025, month, 1), 70, 30, 700.0)


def test_each_offer_trains_on_earlier_campaigns_tunes_on_a_later_one_and_holds_out_the_last():
    campaigns = [
        campaign("c3", "coupon", 7), campaign("c1", "coupon", 1), campaign("c2", "coupon", 4),
        campaign("s1", "service_call", 2), campaign("s2", "service_call", 8), campaign("p1", "push", 3),
    ]  # fmt: skip
    splits = split_campaigns(campaigns, None)
    assert set(splits) == {"coupon", "service_call"}  # one push campaign is not enough
    coupon = splits["coupon"]
    assert [c.campaign_id for c in coupon.train] == ["c1"]
    assert (coupon.valid.campaign_id, coupon.holdout.campaign_id) == ("c2", "c3")
    assert not coupon.holdout_is_validation
    assert splits["service_call"].holdout_is_validation  # two campaigns: tuned and held out on the last
    with pytest.raises(UserError, match="'push' has 1 randomised campaign"):
        split_campaigns(campaigns, ["push"])
    with pytest.raises(UserError, match="No offer has two"):
        split_campaigns(campaigns[3:4], None)


def test_the_served_model_scores_as_causalml_does():
    from serving.uplift_model import UpliftModel

    x, treated, retained, tau = randomised(3000)
    params = UpliftParams(n_estimators=40, num_leaves=7, min_child_samples=50)
    learner = fit_x_learner(params, x, treated, retained, "coupon")
    share = float(treated.mean())
    served = UpliftModel([export_learner(learner, "coupon", share, 10.0)], ["a", "b", "c", "d"], {}, 28, 91)
    expected = learner.predict(x, p=np.full(len(x), share)).ravel()
    np.testing.assert_allclose(served.uplift_matrix(x, "coupon"), expected, rtol=1e-6, atol=1e-9)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    np.testing.assert_allclose(served.uplift(frame, "coupon"), expected, rtol=1e-6, atol=1e-9)
    # it learnt the effect: the customers who gain are ranked above those who do not
    assert (
        served.uplift(frame, "coupon")[tau > 0].mean() > served.uplift(frame, "coupon")[tau == 0].mean() + 0.1
    )
    with pytest.raises(UserError, match="no learner for the offer 'bundle'"):
        served.uplift(frame, "bundle")


def test_smoke_train_registers_a_champion_that_serves(uplift_run, store):
    import mlflow
    from mlflow import MlflowClient
    from training.registry import MODEL_DESCRIPTIONS, get_alias

    assert set(uplift_run.metrics) == {"coupon"}
    figures = uplift_run.metrics["coupon"]
    assert {"qini", "auuc", "uplift_at_10", "uplift_at_20", "uplift_at_30", "qini_oracle"} <= set(figures)
    assert figures["holdout_is_validation"] == 0.0  # the tiny preset has more than two coupon campaigns
    doc = json.loads(uplift_run.extra["metrics_json"].read_text())
    assert (
        doc["model"] == "uplift"
        and doc["campaigns"]["coupon"]["holdout"] == uplift_run.campaigns["coupon"]["holdout"]
    )
    champion = get_alias("uplift", "champion", store=store)
    assert champion is not None and champion.version == uplift_run.registered_version
    model = mlflow.pyfunc.load_model(champion.uri)
    example = model.input_example
    assert len(model.predict(example, params={"offer": "coupon"})) == len(example)
    assert model.unwrap_python_model().learners["coupon"].cost > 0
    assert MlflowClient().get_registered_model("uplift").description == MODEL_DESCRIPTIONS["uplift"]
