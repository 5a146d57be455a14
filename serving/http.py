"""The service's HTTP edge: the Guard middleware (auth, JSON-only bodies, the fast lane) and JSON helpers.

The fast lane answers the hot endpoints (:data:`FAST_LANE`) in the middleware itself: the same
request model, the same service method and the same JSON as the typed endpoint, without BentoML's
per-request pipeline. Every other request, and every request with ``CRM_FAST_LANE=0``, goes
through BentoML, whose 400 bodies are rewritten into one sentence per invalid field.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import bentoml
from pydantic import ValidationError
from starlette.responses import Response

from serving.config import OPEN_PATHS, ServiceSettings
from serving.schemas import ChurnScoreRequest, RecommendRequest

# path -> (request model, CRMService method): the endpoints the Guard answers itself
FAST_LANE = {
    "/recommend": (RecommendRequest, "answer_recommend"),
    "/churn_score": (ChurnScoreRequest, "answer_churn_score"),
}


def json_response(payload: Any, status: int = 200) -> Response:
    """JSON bytes straight to the client (no per-response schema work in BentoML)."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Response(body, status_code=status, media_type="application/json")


def error_response(status: int, message: str, field_name: str | None = None) -> Response:
    """``{"error": message, "field": field_name}`` with ``status``."""
    payload: dict[str, Any] = {"error": message}
    if field_name:
        payload["field"] = field_name
    return json_response(payload, status)


def validation_payload(details: list[dict]) -> dict[str, Any]:
    """The 400 body: one sentence per invalid field, the first field's name, pydantic's details."""
    return {
        "error": "; ".join(_field_message(d) for d in details),
        "field": ".".join(str(p) for p in details[0].get("loc", ())) or "body",
        "detail": details,
    }


def _field_message(detail: dict) -> str:
    loc = ".".join(str(p) for p in detail.get("loc", ()))
    return f"{loc or 'request body'}: {detail.get('msg', 'invalid')}"


class Guard:
    """ASGI middleware: the bearer token (when configured) and JSON-only request bodies.

    Health and readiness stay open; every other path needs ``Authorization: Bearer <token>``.
    A POST body that is not JSON gets 415 here, before BentoML would try other decoders.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        settings = ServiceSettings.from_env()
        self.token = settings.token_bytes()
        self.fast_lane = settings.fast_lane

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.token is not None and not hmac.compare_digest(headers.get(b"authorization", b""), self.token):
            return await self._reply(
                send, 401, b'{"error":"missing or wrong bearer token in the Authorization header"}'
            )
        if scope["method"] == "POST":
            media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
            if media not in (b"application/json", b""):
                return await self._reply(
                    send, 415, b'{"error":"the request body must be JSON (Content-Type: application/json)"}'
                )
            if self.fast_lane and scope["path"] in FAST_LANE:
                return await self._fast_lane(scope, receive, send)
        return await self.app(scope, receive, _NameTheField(send))

    async def _fast_lane(self, scope: dict, receive: Any, send: Any) -> None:
        """Answer a hot endpoint here: validate the body with its request model, call its method."""
        model, handler = FAST_LANE[scope["path"]]
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            request = model.model_validate_json(bytes(body) or b"{}")
        except ValidationError as exc:
            payload = validation_payload(
                exc.errors(include_context=False, include_input=False, include_url=False)
            )
            response = json_response(payload, 400)
        else:
            service = bentoml.get_current_service()
            response = getattr(service, handler)(
                **{k: getattr(request, k) for k in type(request).model_fields}
            )
        await response(scope, receive, send)

    @staticmethod
    async def _reply(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _NameTheField:
    """Rewrites BentoML's 400 body ("1 validation error for Input") into one sentence per field.

    Only 400 responses are buffered; every other response passes through untouched.
    """

    def __init__(self, send: Any) -> None:
        self.send = send
        self.start: dict | None = None

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start" and message["status"] == 400:
            self.start = message
            return None
        if self.start is None or message["type"] != "http.response.body":
            return await self.send(message)
        if message.get("more_body"):  # not BentoML's one-piece error body: pass it through as is
            await self.send(self.start)
            self.start = None
            return await self.send(message)
        body = message.get("body", b"")
        try:
            payload = json.loads(body)
            details = payload.get("detail") if isinstance(payload, dict) else None
            if isinstance(details, list) and details:
                for d in details:
                    d.pop("url", None)
                body = json.dumps(validation_payload(details), separators=(",", ":")).encode()
        except ValueError:
            pass
        headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**self.start, "headers": headers})
        self.start = None
        await self.send({"type": "http.response.body", "body": body})


class DropValidationTracebacks(logging.Filter):
    """A client's bad request is answered with 400; it is not a server error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ValidationError))
