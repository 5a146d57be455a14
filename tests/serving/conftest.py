"""Serving fixtures: tiny champion models in a private registry, and the online snapshot.

The models are real but small: the churn model is LightGBM fitted (no Optuna search) on the
tiny preset's labels, the recommender is the two-tower trained for one epoch. Both are logged as
their serving pyfuncs, registered and promoted through training.registry, once per session, in a
store of their own (so promotions elsewhere in the suite cannot move these aliases).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from features.store import Store
from tests.server import crm_server, env_scope

LIVE_TOKEN = "live-test-token"
LIVE_HEADER_TIMEOUT = 2


@dataclass
class ServingEnv:
    """Where the service finds its models and snapshot; ``env`` is what to export."""

    store: Store
    snapshot: Path
    env: dict[str, str]
    known_customers: list[str]
    churn_version: str
    recommender_version: str

    def apply(self, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
        for key, value in {**self.env, **extra}.items():
            monkeypatch.setenv(key, value)


def train_tiny_churn(data: Path, store: Store) -> str:
    """Fit the churn model on two as-of dates of the tiny preset; register and promote it."""
    from training.churn import ChurnParams, train_fixed

    params = ChurnParams(max_rounds=60, early_stopping=10, num_threads=1)
    return train_fixed(data, store, "serving-tests", params)


def train_tiny_recommender(data: Path, store: Store) -> str:
    """One epoch of the two-tower on the tiny preset, registered and promoted."""
    from training.recommender import RecommenderTrainConfig, run
    from training.registry import promote

    cfg = RecommenderTrainConfig(data=data, epochs=1, baselines=False, register_model=True, store=store)
    result = run(cfg)
    promote("recommender", force=True, store=store)
    return str(result.registered_version)


def train_tiny_value(data: Path, store: Store) -> str:
    """The value model on the tiny preset (90-day horizon: the tiny history is short), promoted."""
    from training.registry import promote
    from training.value import ValueTrainConfig, run

    result = run(
        ValueTrainConfig(data=data, as_of="2025-09-01", horizon_days=90, register_model=True, store=store)
    )
    promote("value", force=True, store=store)
    return str(result.registered_version)


@pytest.fixture(scope="session")
def serving_env(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> ServingEnv:
    """Champion churn and recommender models plus the online snapshot of the tiny preset."""
    import pandas as pd

    from features.online import build_online_snapshot

    root = tmp_path_factory.mktemp("serving")
    store = Store.at(root / "store")
    env = {
        **store.env(), "CRM_ONLINE_SNAPSHOT": str(root / "online"), "GIT_PYTHON_REFRESH": "quiet",
        "CRM_EVENT_LOG": str(root / "eventlog.sqlite"),  # what /events accepts, never in out/
    }  # fmt: skip
    with env_scope(env):
        snapshot = build_online_snapshot(tiny_data, root / "online")
        churn_version = train_tiny_churn(tiny_data, store)
        recommender_version = train_tiny_recommender(tiny_data, store)
        train_tiny_value(tiny_data, store)
    known = pd.read_parquet(snapshot / "snapshot.parquet")["customer_id"].astype(str).tolist()
    return ServingEnv(store, snapshot, env, known, churn_version, recommender_version)


@pytest.fixture()
def service_env(serving_env: ServingEnv, monkeypatch: pytest.MonkeyPatch) -> ServingEnv:
    """The serving environment exported for one test (no token, fast lane on)."""
    serving_env.apply(monkeypatch)
    monkeypatch.delenv("CRM_API_TOKEN", raising=False)
    monkeypatch.delenv("CRM_FAST_LANE", raising=False)
    monkeypatch.delenv("CRM_RELOAD_POLL_SECONDS", raising=False)
    return serving_env


def start_client(serving_env: ServingEnv, **extra: str):
    """An in-process client over a started service (models loaded) under ``env`` + ``extra``;
    without a ``CRM_API_TOKEN`` in ``extra`` it has none, and /info and /reload are opened."""
    from unittest import mock

    from starlette.testclient import TestClient

    from serving.service import CRMService

    env = {
        "CRM_FAST_LANE": "1",
        "CRM_RELOAD_POLL_SECONDS": "0",
        "CRM_OPEN_OPERATIONS": "1",
        **serving_env.env,
        **extra,
    }
    with env_scope(env), mock.patch.dict(os.environ):
        if "CRM_API_TOKEN" not in extra:
            os.environ.pop("CRM_API_TOKEN", None)
        client = TestClient(CRMService.to_asgi())
        client.__enter__()  # runs the lifespan: the service loads its models here
    instance = _current_service()
    _LIVE_SERVICES.append(instance)
    close = client.__exit__

    def close_and_restore(*exc) -> None:
        # BentoML keeps one process-wide current service and clears it when an app stops; a test
        # process runs several apps at once, so the latest one still running serves again
        close(*exc)
        _LIVE_SERVICES.remove(instance)
        _set_current_service(_LIVE_SERVICES[-1] if _LIVE_SERVICES else None)

    client.__exit__ = close_and_restore
    return client


_LIVE_SERVICES: list = []  # the service instances of the clients not yet closed, oldest first


def _current_service():
    import bentoml
    from bentoml.exceptions import BentoMLException

    try:
        return bentoml.get_current_service()
    except BentoMLException:
        return None


def _set_current_service(service) -> None:
    from _bentoml_sdk.service import set_current_service

    set_current_service(service)


@pytest.fixture(scope="session", params=["fast_lane", "bentoml"])
def client(request: pytest.FixtureRequest, serving_env: ServingEnv):
    """The started service, once with the fast lane and once through BentoML's full pipeline.

    Every test that uses it runs against both, which proves they answer identically.
    """
    c = start_client(serving_env, CRM_FAST_LANE="1" if request.param == "fast_lane" else "0")
    yield c
    c.__exit__(None, None, None)


@pytest.fixture(scope="session")
def uplift_location(uplift_run, store) -> str:
    """Where the tiny coupon uplift champion's files are (it lives in the suite's own store, not the
    serving one): a service given this location as ``CRM_UPLIFT_MODEL_URI`` loads it."""
    from serving.registry import resolve_model_uri

    return resolve_model_uri("models:/uplift@champion", store.tracking).location


@pytest.fixture(scope="session")
def live_server(serving_env: ServingEnv, uplift_location: str, tmp_path_factory: pytest.TempPathFactory):
    """`crm serve` on a free loopback port (a real server process), until the session ends, with
    every model /retention_plan included; it wants the bearer token ``LIVE_TOKEN`` and gives
    headers ``LIVE_HEADER_TIMEOUT`` seconds."""
    env = {
        **os.environ,
        **serving_env.env,
        "CRM_UPLIFT_MODEL_URI": uplift_location,
        "CRM_RELOAD_POLL_SECONDS": "0",
        "CRM_API_TOKEN": LIVE_TOKEN,
        "CRM_HEADER_TIMEOUT_SECONDS": str(LIVE_HEADER_TIMEOUT),
    }
    log = tmp_path_factory.mktemp("server") / "server.log"
    with crm_server(env, log) as base:
        yield base
