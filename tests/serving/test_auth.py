"""Auth: the token's format, the bearer scheme in any case, one Authorization header, websockets
checked like HTTP, and /info and /reload off without a token unless opened."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from features.errors import UserError
from serving.config import ServiceSettings
from tests.serving.conftest import start_client

TOKEN = "s3cret"


@pytest.fixture(scope="module")
def guarded(serving_env):
    """The service with a token."""
    c = start_client(serving_env, CRM_API_TOKEN=TOKEN)
    yield c
    c.__exit__(None, None, None)


@pytest.fixture(scope="module")
def tokenless(serving_env):
    """The service without a token, /info and /reload not opened."""
    c = start_client(serving_env, CRM_OPEN_OPERATIONS="0")
    yield c
    c.__exit__(None, None, None)


@pytest.mark.parametrize("value", ["", " ", "\t"])
def test_an_empty_token_is_a_start_up_error(value):
    with pytest.raises(UserError, match=r"^Environment variable CRM_API_TOKEN is set but empty: set it"):
        ServiceSettings.from_env({"CRM_API_TOKEN": value})
    with pytest.raises(ValidationError, match="printable ASCII"):
        ServiceSettings(api_token=value)


def test_crm_serve_refuses_an_empty_token_in_one_sentence(serving_env):
    env = {**serving_env.env, "CRM_API_TOKEN": ""}
    result = subprocess.run(
        [sys.executable, "-m", "crm.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "CRM_API_TOKEN is set but empty" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(guarded, scheme):
    assert guarded.get("/info", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200
    assert guarded.get("/info", headers={"Authorization": f"{scheme}  {TOKEN}"}).status_code == 200  # 1*SP


@pytest.mark.parametrize("value", ["", "Bearer", f"Basic {TOKEN}", f"Bearer{TOKEN}", "Bearer nope", TOKEN])
def test_wrong_credentials_are_401(guarded, value):
    r = guarded.post("/churn_list", json={}, headers={"Authorization": value})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_several_authorization_headers_are_400_even_when_right(guarded):
    both = [("Authorization", f"Bearer {TOKEN}"), ("Authorization", f"Bearer {TOKEN}")]
    r = guarded.post("/churn_list", json={}, headers=both)
    assert r.status_code == 400 and "2 Authorization headers" in r.json()["error"]
    assert guarded.get("/healthz", headers=both).status_code == 200  # probes ignore credentials


def test_websockets_are_checked_like_http(guarded):
    with pytest.raises(WebSocketDisconnect) as refused, guarded.websocket_connect("/recommend"):
        pass
    assert refused.value.code == 1008  # policy violation: the Guard closed it before the app
    with (
        pytest.raises(WebSocketDisconnect) as passed,
        guarded.websocket_connect("/recommend", headers={"Authorization": f"Bearer {TOKEN}"}),
    ):
        pass
    assert passed.value.code != 1008  # through to the app (which serves no websocket)


def test_info_and_reload_are_off_without_a_token(tokenless, serving_env):
    for method, path in (("GET", "/info"), ("POST", "/info"), ("POST", "/reload")):
        r = tokenless.request(method, path)
        assert r.status_code == 403 and "CRM_API_TOKEN" in r.json()["error"], r.text
        assert "CRM_OPEN_OPERATIONS=1" in r.json()["error"]
    assert tokenless.put("/info").status_code == 405  # a method it never answers is still 405
    customer = serving_env.known_customers[0]
    assert tokenless.post("/recommend", json={"customer_id": customer}).status_code == 200  # the rest is open


def test_info_and_reload_are_opened_explicitly(client):
    assert client.get("/info").status_code == 200  # the client fixture sets CRM_OPEN_OPERATIONS=1
