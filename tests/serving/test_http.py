"""End to end over HTTP: `crm serve` as a real process on a free loopback port, with a token.

Besides the answers, what only a real server shows: the limits of its HTTP parser (a client
stalled mid-headers is cut off with 408, oversized headers get 431 before they are read) and a
declared body size over the limit refused before the body is sent.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx

from serving.config import DEFAULT_MAX_BODY_BYTES
from tests.serving.conftest import LIVE_HEADER_TIMEOUT, LIVE_TOKEN

AUTH = {"Authorization": f"Bearer {LIVE_TOKEN}"}


def test_served_over_http(live_server, serving_env):
    with httpx.Client(base_url=live_server, timeout=30, headers=AUTH) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200

        customer = serving_env.known_customers[0]
        rec = http.post("/recommend", json={"customer_id": customer, "k": 5})
        assert rec.status_code == 200 and rec.headers["content-type"].startswith("application/json")
        body = rec.json()
        assert body["customer_id"] == customer and len(body["items"]) == 5 and body["fallback"] is False

        unknown = http.post("/recommend", json={"customer_id": "never-seen", "k": 3}).json()
        assert unknown["fallback"] is True and len(unknown["items"]) == 3

        batch = http.post("/recommend_batch", json={"customer_ids": [customer, "never-seen"], "k": 5}).json()
        ids = [i["item_id"] for i in batch["results"][0]["items"]]
        assert ids == [i["item_id"] for i in body["items"]]

        scores = http.post("/churn_score", json={"customer_ids": [customer]}).json()["scores"]
        assert scores[0]["known"] is True and 0 <= scores[0]["churn_probability"] <= 1

        ranked = http.post("/churn_list", json={"limit": 5}).json()["customers"]
        assert [r["rank"] for r in ranked] == [1, 2, 3, 4, 5]

        bad = http.post("/recommend", json={"customer_id": customer, "k": 1000})
        assert bad.status_code == 400 and bad.json()["field"] == "k"
        garbage = http.post("/churn_score", content=b"{{{", headers={"content-type": "application/json"})
        assert garbage.status_code == 400

        info = http.post("/info").json()
        assert info["ready"] and info["recommender_version"] == body["model_version"]
        assert http.get("/info").json() == info
        assert httpx.get(f"{live_server}/info").status_code == 401  # the token is needed


def exchange(base: str, request: bytes, timeout: float) -> tuple[float, bytes]:
    """Send raw bytes on a fresh connection; (seconds until the server closed it, what it sent)."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as conn:
        start = time.monotonic()
        conn.sendall(request)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return time.monotonic() - start, answer


def test_a_client_stalled_mid_headers_is_cut_off(live_server):
    for stalled in (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a", b""):  # part of the headers, or none
        seconds, answer = exchange(live_server, stalled, timeout=LIVE_HEADER_TIMEOUT * 5)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"CRM_HEADER_TIMEOUT_SECONDS" in answer
        assert LIVE_HEADER_TIMEOUT - 0.5 < seconds < LIVE_HEADER_TIMEOUT * 4


def test_the_header_deadline_spares_an_idle_keep_alive_connection(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        time.sleep(LIVE_HEADER_TIMEOUT + 0.5)  # idle between requests: uvicorn's keep-alive rules
        assert http.get("/healthz").status_code == 200


def test_oversized_headers_are_431_before_they_are_read(live_server):
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    seconds, answer = exchange(live_server, big, timeout=30)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"CRM_MAX_HEADER_BYTES" in answer and seconds < LIVE_HEADER_TIMEOUT
    assert httpx.get(f"{live_server}/healthz").status_code == 200  # the server is unharmed


def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(live_server):
    head = (
        f"POST /recommend_batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {LIVE_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {DEFAULT_MAX_BODY_BYTES + 1}\r\n\r\n"
    )
    seconds, answer = exchange(live_server, head.encode(), timeout=30)  # and no body follows
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"CRM_MAX_BODY_BYTES" in answer and seconds < LIVE_HEADER_TIMEOUT
