"""POST /retention_plan: the plan `crm retention-plan` writes, from the service's loaded models."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.serving.conftest import ServingEnv, start_client


@pytest.fixture(scope="module")
def plan_client(serving_env: ServingEnv, uplift_location: str):
    client = start_client(serving_env, CRM_UPLIFT_MODEL_URI=uplift_location)
    yield client
    client.__exit__(None, None, None)


def test_the_plan_is_the_batch_jobs_plan_within_budget_with_a_random_control(
    plan_client, serving_env: ServingEnv, uplift_location: str
):
    from features.online import load_online_snapshot
    from serving.plan import retention_plan
    from serving.registry import load_python_model
    from serving.value_model import load_value_model

    # a cost of 1: the tiny model's uplifts are small, and a real coupon would price every customer out
    body = {"offer": "coupon", "budget": 300.0, "cost": 1.0, "control_share": 0.2, "seed": 5}
    response = plan_client.post("/retention_plan", json=body)
    assert response.status_code == 200, response.text
    plan = response.json()
    customers = pd.DataFrame(plan["customers"])
    assert len(customers) > 0 and plan["treated"] + plan["control"] == len(customers)
    assert plan["spend"] <= 300.0 and customers["cost"].sum() == pytest.approx(plan["spend"], abs=0.01)
    assert (customers["expected_value_saved"] > 0).all()
    assert customers["rank"].tolist() == list(range(1, len(customers) + 1))
    assert (customers["arm"] == "control").sum() == round(0.2 * len(customers))
    assert (customers.loc[customers["arm"] == "control", "cost"] == 0).all()
    assert plan["snapshot_as_of"] == load_online_snapshot(serving_env.snapshot).as_of
    # the same plan the batch job draws from the same models, snapshot and seed
    online = load_online_snapshot(serving_env.snapshot)
    value = load_value_model("models:/value@champion", serving_env.store.tracking)
    start = pd.Timestamp(online.as_of).to_pydatetime()
    batch = retention_plan(
        online.snapshot,
        load_python_model(uplift_location),
        value.model,
        "coupon",
        300.0,
        0.2,
        cost=1.0,
        seed=5,
        start=start,
    ).customers
    assert customers["customer_id"].tolist() == batch["customer_id"].astype(str).tolist()
    assert customers["arm"].tolist() == batch["arm"].tolist()
    again = plan_client.post("/retention_plan", json=body).json()
    other = plan_client.post("/retention_plan", json={**body, "seed": 6}).json()
    assert again["customers"] == plan["customers"] and other["customers"] != plan["customers"]


def test_info_names_the_uplift_model(plan_client, uplift_location: str):
    info = plan_client.get("/info").json()
    assert info["uplift_model"] == uplift_location


def test_an_offer_without_a_learner_is_a_404_and_a_bad_body_a_400_naming_the_field(plan_client):
    unknown = plan_client.post("/retention_plan", json={"offer": "bundle", "budget": 100.0})
    assert unknown.status_code == 404 and "no learner for the offer 'bundle'" in unknown.json()["error"]
    assert unknown.json()["field"] == "offer"
    for body, field in (
        ({"offer": "flowers", "budget": 100.0}, "offer"),
        ({"offer": "coupon", "budget": -1.0}, "budget"),
        ({"offer": "coupon", "budget": 100.0, "control_share": 1.0}, "control_share"),
        ({"offer": "coupon"}, "budget"),
        ({"offer": "coupon", "budget": 100.0, "channel": "carrier_pigeon"}, "channel"),
    ):
        response = plan_client.post("/retention_plan", json=body)
        assert response.status_code == 400 and response.json()["field"] == field, (body, response.text)


def test_without_an_uplift_model_the_plan_is_a_503_that_says_what_to_do(serving_env: ServingEnv):
    client = start_client(serving_env, CRM_UPLIFT_MODEL_URI="models:/no-such-uplift@champion")
    try:
        assert client.get("/info").json()["uplift_model"] is None
        response = client.post("/retention_plan", json={"offer": "coupon", "budget": 100.0})
        assert response.status_code == 503 and "crm train uplift" in response.json()["error"]
    finally:
        client.__exit__(None, None, None)
