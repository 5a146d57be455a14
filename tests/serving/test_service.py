"""The BentoML service in process: every endpoint, every error path, reloads and auth.

Most tests take the ``client`` fixture, which runs them twice: with the fast lane on (the Guard
answers /recommend and /churn_score) and off (BentoML's full pipeline), so both paths must
agree.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from features.vocab import LIFECYCLE_STAGES
from tests.serving.conftest import ServingEnv, start_client

POST_ENDPOINTS = ["/recommend", "/recommend_batch", "/churn_score", "/churn_list", "/info", "/reload"]


def _items(path) -> pd.DataFrame:
    return pd.read_parquet(path / "items.parquet").set_index("item_id")


def _owned(path) -> dict[str, set[str]]:
    owned = pd.read_parquet(path / "owned.parquet")
    return owned.groupby("customer_id")["item_id"].agg(set).to_dict()


def _buyers(env: ServingEnv, n: int) -> list[str]:
    """Known customers who own at least one item (so 'owned is excluded' can fail)."""
    owned = _owned(env.snapshot)
    return [c for c in env.known_customers if c in owned][:n]


# --- health and readiness -----------------------------------------------------------------------


def test_health_and_readiness_once_loaded(client, serving_env):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    info = client.post("/info").json()
    assert info["ready"] is True
    assert info["churn_version"] == serving_env.churn_version
    assert info["recommender_version"] == serving_env.recommender_version
    assert info["churn_model"] == f"models:/churn/{serving_env.churn_version}"


def test_not_ready_when_models_fail_to_load_but_still_answers(serving_env):
    c = start_client(serving_env, CRM_CHURN_MODEL_URI="models:/churn@no_such_alias")
    try:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 503
        r = c.post("/recommend", json={"customer_id": serving_env.known_customers[0]})
        assert r.status_code == 503
        assert "no_such_alias" in r.json()["error"]
        info = c.post("/info").json()
        assert info["ready"] is False and "no_such_alias" in info["last_reload_error"]
    finally:
        c.__exit__(None, None, None)


# --- /recommend ---------------------------------------------------------------------------------


def test_recommend_known_customer_never_offers_owned_or_inactive_items(client, serving_env):
    items = _items(serving_env.snapshot)
    owned = _owned(serving_env.snapshot)
    for customer in _buyers(serving_env, 20):
        r = client.post("/recommend", json={"customer_id": customer, "k": 10})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["customer_id"] == customer and body["fallback"] is False
        assert body["model_version"] == serving_env.recommender_version
        ids = [i["item_id"] for i in body["items"]]
        assert 0 < len(ids) <= 10 and len(set(ids)) == len(ids)
        assert not set(ids) & owned[customer]
        assert items.loc[ids, "active"].all()
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores) and sum(scores) <= 1.0 + 1e-5
        assert [i["category"] for i in body["items"]] == items.loc[ids, "category"].tolist()
        assert [i["subcategory"] for i in body["items"]] == items.loc[ids, "subcategory"].tolist()
        assert [i["price"] for i in body["items"]] == items.loc[ids, "price"].round(2).tolist()
        assert all(isinstance(i["reason"], str) and i["reason"] for i in body["items"])


def test_recommend_exclude_owned_false_may_offer_owned_items(client, serving_env):
    customer = _buyers(serving_env, 1)[0]
    with_owned = client.post(
        "/recommend", json={"customer_id": customer, "k": 50, "exclude_owned": False}
    ).json()
    without = client.post("/recommend", json={"customer_id": customer, "k": 50}).json()
    allowed = {i["item_id"] for i in with_owned["items"]}
    # excluding owned items only removes items: what remains keeps its order
    kept = [
        i["item_id"]
        for i in with_owned["items"]
        if i["item_id"] not in _owned(serving_env.snapshot)[customer]
    ]
    assert [i["item_id"] for i in without["items"]][: len(kept)] == kept
    assert allowed  # the unfiltered list is not empty


def test_recommend_unknown_customer_gets_popularity_fallback(client, serving_env):
    a = client.post("/recommend", json={"customer_id": "never-seen-1", "k": 5}).json()
    b = client.post("/recommend", json={"customer_id": "never-seen-2", "k": 5}).json()
    assert a["fallback"] is True and b["fallback"] is True
    assert len(a["items"]) == 5
    assert [i["item_id"] for i in a["items"]] == [i["item_id"] for i in b["items"]]
    scores = [i["score"] for i in a["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)  # the known customers' scale (see test_reasons.py)
    popularity = ("popular this month", "popular in ", "bought by other", "from our ")
    for item in a["items"]:  # about the item's popularity, never about devices the customer owns
        assert item["reason"].startswith(popularity), item


def test_recommend_category_allow_list(client, serving_env):
    customer = serving_env.known_customers[0]
    for cats in (["phone"], ["wearable", "accessory"]):
        body = client.post("/recommend", json={"customer_id": customer, "k": 20, "categories": cats}).json()
        assert body["items"] and {i["category"] for i in body["items"]} <= set(cats)


@pytest.mark.parametrize("k", [1, 100])
def test_recommend_k_bounds_accepted(client, serving_env, k):
    r = client.post("/recommend", json={"customer_id": serving_env.known_customers[1], "k": k})
    assert r.status_code == 200
    assert 1 <= len(r.json()["items"]) <= k


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "C1", "k": 0}, "k"),
        ({"customer_id": "C1", "k": 101}, "k"),
        ({"customer_id": "C1", "k": "ten"}, "k"),
        ({"k": 5}, "customer_id"),
        ({"customer_id": ""}, "customer_id"),
        ({"customer_id": "x" * 201}, "customer_id"),
        ({"customer_id": 12}, "customer_id"),
        ({"customer_id": "C1", "categories": "phone"}, "categories"),
        ({"customer_id": "C1", "top_k": 5}, "top_k"),
    ],
)
def test_recommend_invalid_fields_are_400_naming_the_field(client, body, field):
    r = client.post("/recommend", json=body)
    assert r.status_code == 400, r.text
    payload = r.json()
    assert payload["field"] == field
    assert field in payload["error"]


@pytest.mark.parametrize("path", POST_ENDPOINTS[:4])
@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b'"just a string"', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b"customer_id=C1", "application/x-www-form-urlencoded", 415),
        (b"--x\r\n", "multipart/form-data; boundary=x", 415),
        (b"<a/>", "text/xml", 415),
    ],
)
def test_malformed_bodies_are_4xx_never_5xx(client, path, content, ctype, status):
    r = client.post(path, content=content, headers={"content-type": ctype})
    assert r.status_code == status, r.text
    assert "error" in r.json()


def test_empty_body_names_the_missing_field(client):
    r = client.post("/recommend", content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "customer_id"


# --- /recommend_batch ---------------------------------------------------------------------------


def test_recommend_batch_matches_single_requests(client, serving_env):
    ids = serving_env.known_customers[:15] + ["never-seen-3"]
    body = client.post("/recommend_batch", json={"customer_ids": ids, "k": 7}).json()
    assert [r["customer_id"] for r in body["results"]] == ids
    assert body["model_version"] == serving_env.recommender_version
    for result in body["results"]:
        single = client.post("/recommend", json={"customer_id": result["customer_id"], "k": 7}).json()
        assert [i["item_id"] for i in result["items"]] == [i["item_id"] for i in single["items"]]
        assert result["fallback"] == single["fallback"]
    assert body["results"][-1]["fallback"] is True


def test_recommend_batch_limits(client, serving_env):
    ok = client.post("/recommend_batch", json={"customer_ids": ["u"] * 10_000, "k": 1})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 10_000
    for body, field in [
        ({"customer_ids": ["u"] * 10_001}, "customer_ids"),
        ({"customer_ids": []}, "customer_ids"),
        ({"customer_ids": ["C1"], "k": 500}, "k"),
        ({"customer_ids": "C1"}, "customer_ids"),
    ]:
        r = client.post("/recommend_batch", json=body)
        assert r.status_code == 400 and r.json()["field"] == field


# --- /churn_score -------------------------------------------------------------------------------


def test_churn_score_known_and_unknown(client, serving_env):
    import mlflow
    from serving.churn_scoring import risk_band
    from serving.registry import resolve_model_uri

    ids = serving_env.known_customers[:25] + ["never-seen-4"]
    body = client.post("/churn_score", json={"customer_ids": ids}).json()
    assert body["model_version"] == serving_env.churn_version
    scores = body["scores"]
    assert [s["customer_id"] for s in scores] == ids
    assert scores[-1] == {
        "customer_id": "never-seen-4", "known": False, "churn_probability": None, "risk_band": None,
        "top_reasons": [], "customer_value": None, "value_at_risk": None, "suggested_action": None,
        "lifecycle_stage": None,
    }  # fmt: skip
    known = scores[:-1]
    p = np.array([s["churn_probability"] for s in known])
    assert ((p >= 0) & (p <= 1)).all()
    assert [s["risk_band"] for s in known] == list(risk_band(p))
    assert all(isinstance(s["top_reasons"], list) and s["suggested_action"] for s in known)
    # the served probability is the champion's probability for the snapshot row
    ref = resolve_model_uri("models:/churn@champion", serving_env.env["MLFLOW_TRACKING_URI"])
    assert ref.version == serving_env.churn_version
    model = mlflow.pyfunc.load_model(ref.location).unwrap_python_model()
    snapshot = pd.read_parquet(serving_env.snapshot / "snapshot.parquet").set_index("customer_id", drop=False)
    expected = model.probability(snapshot.loc[ids[:-1]].reset_index(drop=True))
    np.testing.assert_allclose(p, expected, atol=1e-5)
    assert [s["lifecycle_stage"] for s in known] == snapshot.loc[ids[:-1], "lifecycle_stage"].tolist()


def test_churn_score_limits(client):
    for body in ({"customer_ids": []}, {"customer_ids": ["x"] * 10_001}, {"customer_ids": [""]}, {}):
        r = client.post("/churn_score", json=body)
        assert r.status_code == 400 and r.json()["field"].startswith("customer_ids")


# --- /churn_list --------------------------------------------------------------------------------


def test_churn_list_ranked_by_expected_loss_with_filters(client):
    body = client.post("/churn_list", json={"limit": 30}).json()
    rows = body["customers"]
    assert len(rows) == 30 and [r["rank"] for r in rows] == list(range(1, 31))
    losses = [r["value_at_risk"] for r in rows]
    assert losses == sorted(losses, reverse=True)
    for r in rows:
        assert r["value_at_risk"] == pytest.approx(
            r["churn_probability"] * r["customer_value"], rel=1e-3, abs=1e-2
        )
        assert r["suggested_action"] and isinstance(r["top_reasons"], list)

    by_p = client.post(
        "/churn_list", json={"limit": 30, "sort": "probability", "min_probability": 0.3}
    ).json()
    probs = [r["churn_probability"] for r in by_p["customers"]]
    assert probs == sorted(probs, reverse=True) and all(p >= 0.3 for p in probs)

    gold = client.post("/churn_list", json={"limit": 50, "tiers": ["gold", "platinum"]}).json()["customers"]
    assert gold and {r["member_tier"] for r in gold} <= {"gold", "platinum"}


def test_churn_list_leaves_lapsed_customers_out_unless_asked(client):
    everyone = {"limit": 10_000, "sort": "probability"}
    retention = client.post("/churn_list", json=everyone).json()["customers"]
    assert retention and "lapsed" not in {r["lifecycle_stage"] for r in retention}
    lapsed = client.post("/churn_list", json={**everyone, "stages": ["lapsed"]}).json()["customers"]
    assert lapsed and {r["lifecycle_stage"] for r in lapsed} == {"lapsed"}
    both = client.post("/churn_list", json={**everyone, "stages": ["at_risk", "lapsed"]}).json()["customers"]
    assert {r["lifecycle_stage"] for r in both} == {"at_risk", "lapsed"}
    # the retention list and the lapsed one split the snapshot between them
    every_stage = {**everyone, "stages": list(LIFECYCLE_STAGES)}
    all_ids = {r["customer_id"] for r in client.post("/churn_list", json=every_stage).json()["customers"]}
    assert {r["customer_id"] for r in retention} | {r["customer_id"] for r in lapsed} == all_ids


def test_churn_list_errors_name_the_field(client):
    cases = [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"min_probability": 1.5}, "min_probability"),
        ({"sort": "revenue"}, "sort"),
        ({"tiers": ["diamond"]}, "tiers.0"),
        ({"owns": ["toasters"]}, "owns"),
        ({"stages": ["gone"]}, "stages.0"),
    ]
    for body, field in cases:
        r = client.post("/churn_list", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["field"] == field


# --- auth ---------------------------------------------------------------------------------------


def test_bearer_token_protects_every_endpoint_except_health(serving_env):
    c = start_client(serving_env, CRM_API_TOKEN="s3cret")
    try:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        for path in POST_ENDPOINTS:
            r = c.post(path, json={})
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            wrong = c.post(path, json={}, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        assert c.get("/docs.json").status_code == 401
        ok = c.post("/recommend", json={"customer_id": "C1"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["items"]
    finally:
        c.__exit__(None, None, None)


# --- reloads ------------------------------------------------------------------------------------


def test_reload_endpoint_swaps_state(client, serving_env):
    before = client.post("/info").json()
    r = client.post("/reload")
    assert r.status_code == 200
    after = r.json()
    assert after["reloaded"] is True and after["reloads"] == before["reloads"] + 1
    assert after["loaded_at"] > before["loaded_at"]
    assert client.post("/recommend", json={"customer_id": "C1"}).status_code == 200


def test_failed_reload_keeps_serving_and_is_reported(service_env):
    from serving.service import CRMService

    service = CRMService.inner()
    state = service._state
    assert state is not None
    good = service.settings
    service.settings = service.settings.model_copy(
        update={"recommender_model_uri": "models:/recommender@gone"}
    )
    assert service.reload() is False
    assert service._state is state  # nothing swapped
    assert "gone" in service.last_reload_error
    response = service.answer_recommend(service_env.known_customers[0], 3)
    assert response.status_code == 200
    service.settings = good.model_copy(update={"online_snapshot": service_env.store.dir / "missing"})
    assert service.reload() is False and service._state is state
    assert "incomplete" in service.last_reload_error
    service.settings = good
    assert service.reload() is True and service._state is not state and service.last_reload_error is None


def test_poll_reloads_only_when_an_alias_moves(service_env):
    from mlflow import MlflowClient
    from serving.service import CRMService
    from training.registry import configure_tracking, promote, register_challenger

    service = CRMService.inner()
    first = service._state
    assert service.poll_once() is False and service._state is first
    configure_tracking(service_env.store)
    source = MlflowClient().get_model_version("churn", service_env.churn_version).source
    new = register_challenger(source, "churn", "serving-tests", "roc_auc", 0.5, store=service_env.store)
    try:
        promote("churn", force=True, store=service_env.store)
        assert service.poll_once() is True
        assert service._state is not first and service._state.churn_version == str(new.version)
    finally:
        MlflowClient().set_registered_model_alias("churn", "champion", service_env.churn_version)


def test_poll_follows_the_value_models_alias_too(service_env):
    from mlflow import MlflowClient
    from serving.service import CRMService
    from training.registry import configure_tracking, get_alias, promote, register_challenger

    service = CRMService.inner()
    configure_tracking(service_env.store)
    champion = get_alias("value", "champion", store=service_env.store)
    source = MlflowClient().get_model_version("value", champion.version).source
    new = register_challenger(source, "value", "serving-tests", "spearman", 0.5, store=service_env.store)
    try:
        promote("value", force=True, store=service_env.store)
        assert service.poll_once() is True and service._state.value_version == str(new.version)
        assert service.poll_once() is False  # nothing moved since
    finally:
        MlflowClient().set_registered_model_alias("value", "champion", champion.version)
    assert service.poll_once() is True and service._state.value_version == champion.version


def test_precomputed_lists_equal_the_computed_path(service_env):
    from serving.config import ServiceSettings
    from serving.state import load_state

    state = load_state(ServiceSettings.from_env())
    assert state.top is None  # a loaded state serves before its lists are in
    assert state.precompute() is state.top
    assert state.top.items.shape == (len(service_env.known_customers), 100)
    for customer in service_env.known_customers[:200] + ["never-seen-5"]:
        for k in (1, 10, 100):
            pre = state.precomputed(customer, k)
            computed = state.recommend([customer], k, True, None)[0]
            assert pre["fallback"] == computed["fallback"]
            pre_scores, scores = [i["score"] for i in pre["items"]], [i["score"] for i in computed["items"]]
            np.testing.assert_allclose(pre_scores, scores, rtol=1e-5, atol=2e-6)  # 6 decimals
            _assert_same_ranking(pre["items"], computed["items"], rtol=1e-5)
            reasons = {i["item_id"]: i["reason"] for i in computed["items"]}
            assert all(reasons.get(i["item_id"], i["reason"]) == i["reason"] for i in pre["items"])


def test_a_service_serves_before_its_lists_are_precomputed_and_then_uses_them(serving_env):
    """The lists are precomputed in the background once the state serves: /info says when they
    are in, and the answers do not change when they arrive."""
    c = start_client(serving_env)
    try:
        customers = serving_env.known_customers[:30]
        before = [c.post("/recommend", json={"customer_id": x, "k": 10}).json() for x in customers]
        deadline = time.monotonic() + 60
        while not c.post("/info").json()["lists_precomputed"]:
            assert time.monotonic() < deadline, "the lists were not precomputed within 60 s"
            time.sleep(0.1)
        after = [c.post("/recommend", json={"customer_id": x, "k": 10}).json() for x in customers]
    finally:
        c.__exit__(None, None, None)
    for a, b in zip(before, after, strict=True):
        assert a["fallback"] == b["fallback"]
        _assert_same_ranking(a["items"], b["items"], rtol=1e-5)


def test_churn_reasons_are_computed_for_the_customers_shown_and_equal_a_whole_snapshot_pass(service_env):
    from serving.config import ServiceSettings
    from serving.state import load_state

    state = load_state(ServiceSettings.from_env().model_copy(update={"precompute_recommendations": False}))
    assert state.scored._explained == {}  # nothing explained at load
    ids = service_env.known_customers[:40]
    answers = state.churn_scores(ids)
    assert len(state.scored._explained) == len(ids)
    state.churn_list(0.0, None, None, None, 25, "expected_loss")
    assert len(state.scored._explained) <= len(ids) + 25
    frame = state.snapshot.snapshot.reset_index(drop=True)
    eager = state.churn.score(frame, with_reasons=True)  # every row in one pass, as before
    expected = eager.set_index("customer_id").loc[ids]
    assert [a["top_reasons"] for a in answers] == expected["top_reasons"].map(list).tolist()
    assert [a["suggested_action"] for a in answers] == expected["suggested_action"].tolist()
    np.testing.assert_allclose(
        [a["churn_probability"] for a in answers], expected["churn_probability"], atol=1e-6
    )
    assert state.churn_scores(ids) == answers  # the memo answers the same


def _assert_same_ranking(left: list[dict], right: list[dict], rtol: float) -> None:
    """The same items in the same order, except that items whose scores tie within ``rtol`` may
    swap: a block of queries and a single query go through different FAISS kernels, whose sums
    differ in the last bits."""
    assert len(left) == len(right)
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        if a["item_id"] == b["item_id"]:
            continue
        tied = [r["item_id"] for r in right if np.isclose(r["score"], a["score"], rtol=rtol, atol=2e-6)]
        assert a["item_id"] in tied or i == len(left) - 1, f"position {i}: {a} is not tied in {right}"
        assert np.isclose(a["score"], b["score"], rtol=rtol, atol=2e-6), f"position {i}: {a} != {b}"


def test_churn_list_ranks_the_precomputed_table_as_churn_list_scores(service_env):
    from serving.churn_scoring import churn_list
    from serving.config import ServiceSettings
    from serving.state import load_state

    state = load_state(ServiceSettings.from_env().model_copy(update={"precompute_recommendations": False}))
    snapshot = state.snapshot.snapshot.reset_index(drop=True)
    segment = {"min_probability": 0.0, "tiers": None, "regions": None, "owns": None, "stages": None}
    for query in (
        {**segment, "limit": 100, "sort": "expected_loss"},
        {
            **segment,
            "min_probability": 0.3,
            "tiers": ["gold"],
            "owns": ["phone"],
            "limit": 40,
            "sort": "probability",
        },
        {**segment, "regions": ["north"], "limit": 10_000, "sort": "probability"},
        {**segment, "min_probability": 1.0, "limit": 5, "sort": "expected_loss"},
        {**segment, "stages": ["lapsed", "new"], "limit": 50, "sort": "probability"},
    ):
        listed = state.churn_list(**query)
        expected = churn_list(state.churn, snapshot, **query, value_model=state.value_model)
        assert [r["customer_id"] for r in listed] == expected["customer_id"].tolist()
        assert [r["rank"] for r in listed] == expected["rank"].tolist()
        assert [r["churn_probability"] for r in listed] == [
            round(p, 6) for p in expected["churn_probability"]
        ]
        assert [r["top_reasons"] for r in listed] == expected["top_reasons"].map(list).tolist()
        assert [r["suggested_action"] for r in listed] == expected["suggested_action"].tolist()
        assert [r["lifecycle_stage"] for r in listed] == expected["lifecycle_stage"].tolist()
        assert [r["customer_value"] for r in listed] == [round(v, 2) for v in expected["customer_value"]]


def test_winback_list_ranks_lapsed_customers_as_winback_list_does(service_env):
    from serving.churn_scoring import winback_list
    from serving.config import ServiceSettings
    from serving.state import load_state

    state = load_state(ServiceSettings.from_env().model_copy(update={"precompute_recommendations": False}))
    assert state.value_version is not None  # the serving fixtures register a value model
    snapshot = state.snapshot.snapshot.reset_index(drop=True)
    for query in (
        {"min_probability": 0.0, "tiers": None, "regions": None, "owns": None, "limit": 100},
        {
            "min_probability": 0.2,
            "tiers": ["bronze", "silver"],
            "regions": None,
            "owns": ["phone"],
            "limit": 30,
        },
    ):
        listed = state.winback_list(**query)
        expected = winback_list(state.churn, snapshot, state.value_model, **query)
        assert [r["customer_id"] for r in listed] == expected["customer_id"].tolist()
        assert [r["top_reasons"] for r in listed] == expected["top_reasons"].map(list).tolist()


def test_winback_list_holds_only_lapsed_customers_ranked_by_value_to_win_back(client, serving_env):
    snapshot = pd.read_parquet(serving_env.snapshot / "snapshot.parquet").set_index("customer_id")
    body = client.post("/winback_list", json={"limit": 10_000}).json()
    rows = body["customers"]
    lapsed = set(snapshot.index[snapshot["lifecycle_stage"] == "lapsed"])
    assert rows and {r["customer_id"] for r in rows} == lapsed
    values = [r["winback_value"] for r in rows]
    assert values == sorted(values, reverse=True)
    for r in rows:
        assert 0 <= r["return_probability"] <= 1 and r["customer_value"] >= 0
        assert r["winback_value"] == pytest.approx(r["return_probability"] * r["customer_value"], abs=0.01)
        assert r["suggested_action"]
    assert body["value_version"]
    # the churn list values customers by the same forecast
    retention = client.post("/churn_list", json={"limit": 5}).json()["customers"]
    score = client.post("/churn_score", json={"customer_ids": [retention[0]["customer_id"]]}).json()
    assert score["scores"][0]["customer_value"] == retention[0]["customer_value"]
    assert client.post("/winback_list", json={"min_probability": 2}).status_code == 400


def test_the_lists_say_which_value_model_values_customers(client):
    info = client.post("/info").json()
    assert info["value_model"].startswith("models:/value/") and info["value_version"]
