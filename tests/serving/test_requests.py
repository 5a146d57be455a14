"""Every endpoint takes exactly its request model: unknown fields and coerced values are 400s that
name the field, on the fast lane and the typed path alike (the ``client`` fixture runs both)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        ("/recommend", {"customer_id": "C1", "kk": 3}, "kk"),
        ("/recommend_batch", {"customer_ids": ["C1"], "kk": 3}, "kk"),
        ("/churn_score", {"customer_ids": ["C1"], "k": 3}, "k"),
        ("/churn_list", {"min_prob": 0.99}, "min_prob"),
        ("/info", {"verbose": True}, "verbose"),
        ("/reload", {"force": True}, "force"),
    ],
)
def test_unknown_fields_are_refused_naming_them(client, path, body, unknown):
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    payload = r.json()
    assert payload["field"] == unknown
    assert payload["error"].startswith(f"{unknown}: unknown field")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/recommend", {"customer_id": "C1", "k": "5"}, "k"),
        ("/recommend", {"customer_id": "C1", "k": True}, "k"),
        ("/recommend", {"customer_id": "C1", "k": 5.0}, "k"),
        ("/recommend", {"customer_id": "C1", "exclude_owned": "yes"}, "exclude_owned"),
        ("/recommend", {"customer_id": "C1", "exclude_owned": 1}, "exclude_owned"),
        ("/recommend_batch", {"customer_ids": ["C1"], "k": "5"}, "k"),
        ("/recommend_batch", {"customer_ids": ["C1"], "exclude_owned": "no"}, "exclude_owned"),
        ("/churn_score", {"customer_ids": [12]}, "customer_ids.0"),
        ("/churn_list", {"limit": "5"}, "limit"),
        ("/churn_list", {"limit": True}, "limit"),
        ("/churn_list", {"min_probability": "0.5"}, "min_probability"),
        ("/churn_list", {"min_probability": False}, "min_probability"),
    ],
)
def test_values_are_taken_as_json_gives_them(client, path, body, field):
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and r.json()["error"].startswith(f"{field}: Input should be a valid ")


def test_numbers_where_numbers_belong_still_pass(client, serving_env):
    customer = serving_env.known_customers[0]
    assert (
        client.post("/recommend", json={"customer_id": customer, "k": 3, "exclude_owned": False}).status_code
        == 200
    )
    assert (
        client.post("/churn_list", json={"min_probability": 1, "limit": 3}).status_code == 200
    )  # an int is a number


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/recommend", {"customer_id": "C1", "categories": ["phone", "toasters"]}, "categories"),
        ("/recommend_batch", {"customer_ids": ["C1", "C2"], "categories": ["toasters"]}, "categories"),
        ("/churn_list", {"owns": ["toasters"]}, "owns"),
    ],
)
def test_an_unknown_category_is_a_400_naming_it_on_every_list(client, path, body, field):
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert r.json()["error"].startswith(f"Unknown category 'toasters' in {field}: expected one of ")
    assert "phone" in r.json()["error"]  # the categories it knows, named the same way on every list
