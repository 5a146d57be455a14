"""The service's HTTP edge: the Guard middleware, the HTTP parser's limits, and JSON helpers.

The Guard checks every request before BentoML sees it: the size of its headers (431), one
``Authorization: Bearer <token>`` header when a token is configured (400 for several, 401 for a
missing or wrong one, the scheme in any case; websocket connections too), /info and /reload off
without a token unless opened (403), JSON-only bodies (415) no larger than ``CRM_MAX_BODY_BYTES``
(413, before anything parses them). It answers ``GET /info`` like ``POST /info`` and serves the
OpenAPI document of :mod:`serving.openapi` at /docs.json.

The fast lane answers the hot endpoints (:data:`FAST_LANE`) in the middleware itself: the same
request model, the same service method and the same JSON as the typed endpoint, without BentoML's
per-request pipeline. Every other request, and every request with ``CRM_FAST_LANE=0``, goes
through BentoML, whose 400 bodies are rewritten into one sentence per invalid field.

:class:`BoundedHttpToolsProtocol` is uvicorn's HTTP parser with a deadline and a size cap on each
request's line and headers: BentoML runs uvicorn with neither (it passes no such option), so a
client stalled mid-headers held its connection forever and 1 MB headers were read.
"""

from __future__ import annotations

import hmac
import inspect
import json
import logging
from http import HTTPStatus
from typing import Any, ClassVar

import bentoml
from bentoml.exceptions import BentoMLException
from pydantic import ValidationError
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.config import GET_AND_POST_PATHS, OPEN_PATHS, OPERATION_PATHS, ServiceSettings
from serving.openapi import openapi_document
from serving.schemas import ChurnScoreRequest, EventsRequest, RecommendRequest

# path -> (request model, CRMService method): the endpoints the Guard answers itself
FAST_LANE = {
    "/recommend": (RecommendRequest, "answer_recommend"),
    "/churn_score": (ChurnScoreRequest, "answer_churn_score"),
    "/events": (EventsRequest, "answer_events"),  # a coroutine: it awaits the log's commit
}
ALLOW = "GET, POST"  # on the GET_AND_POST_PATHS
OPENAPI_PATH = "/docs.json"


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON bytes straight to the client (no per-response schema work in BentoML)."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, field_name: str | None = None) -> Response:
    """``{"error": message, "field": field_name}`` with ``status``."""
    payload: dict[str, Any] = {"error": message}
    if field_name:
        payload["field"] = field_name
    return json_response(payload, status)


def validation_payload(details: list[dict], fields: list[str] | None = None) -> dict[str, Any]:
    """The 400 body: one sentence per invalid field, the first field's name, pydantic's details.

    ``fields``: the request's field names, which a message about an unknown field lists.
    """
    return {
        "error": "; ".join(_field_message(d, fields) for d in details),
        "field": ".".join(str(p) for p in details[0].get("loc", ())) or "body",
        "detail": details,
    }


def _field_message(detail: dict, fields: list[str] | None) -> str:
    loc = ".".join(str(p) for p in detail.get("loc", ()))
    message = detail.get("msg", "invalid")
    if detail.get("type") == "extra_forbidden":
        message = "unknown field"
        if fields is not None:
            message += f", expected only {', '.join(fields)}" if fields else " (this request takes none)"
    return f"{loc or 'request body'}: {message}"


def bearer_matches(authorization: bytes, token: bytes) -> bool:
    """Whether an ``Authorization`` value is ``Bearer <token>`` (the scheme in any case, RFC 7235)."""
    scheme, _, credentials = authorization.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(b" "), token)


class BodyTooLarge(Exception):
    """A request body past ``CRM_MAX_BODY_BYTES``."""


class HeadersTooLarge(Exception):
    """A request line and headers past ``CRM_MAX_HEADER_BYTES`` (raised to stop the parser)."""


class Guard:
    """ASGI middleware: header size, auth, JSON-only bounded bodies, GET /info, the OpenAPI document
    and the fast lane (see the module docstring). ``service``: the BentoML service it fronts."""

    def __init__(self, app: Any, service: Any = None) -> None:
        self.app = app
        self.service = service
        self.settings = ServiceSettings.from_env()
        self.token = self.settings.token_bytes()
        BoundedHttpToolsProtocol.configure(self.settings)  # before uvicorn accepts a connection
        self._openapi: tuple[list[str] | None, bytes] | None = None  # (categories, document)
        self._fields: dict[str, list[str]] | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is not None:
            status, message = refusal
            if scope["type"] == "websocket":  # before the handshake: the server answers 403
                return await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return await self._reply(send, status, message)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        return await self._http(scope, receive, send)

    def refusal(self, scope: dict) -> tuple[int, str] | None:
        """(status, message) when the request must be refused on its line and headers alone."""
        headers = scope["headers"]
        size = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        size += sum(len(name) + len(value) + 4 for name, value in headers)  # "name: value\r\n"
        limit = self.settings.max_header_bytes
        if size > limit:
            return 431, (
                f"The request line and headers take {size:,} bytes, more than the limit of {limit:,}"
                " (CRM_MAX_HEADER_BYTES)."
            )
        path = scope["path"]
        if path in OPEN_PATHS:
            return None
        credentials = [value for name, value in headers if name.lower() == b"authorization"]
        if len(credentials) > 1:
            return 400, (
                f"The request has {len(credentials)} Authorization headers: send one,"
                " Authorization: Bearer <token>."
            )
        if self.token is not None:
            if not credentials or not bearer_matches(credentials[0], self.token):
                return 401, "Missing or wrong bearer token: send the header Authorization: Bearer <token>."
        elif path in OPERATION_PATHS and not self.settings.open_operations and _served(path, scope):
            return 403, (
                f"{path} is off because the service has no token: set CRM_API_TOKEN (and send it),"
                " or CRM_OPEN_OPERATIONS=1 to open /info and /reload without one."
            )
        return None

    async def _http(self, scope: dict, receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        if path == OPENAPI_PATH and method in ("GET", "HEAD") and self.service is not None:
            return await self._openapi_document(scope, receive, send)
        if path in GET_AND_POST_PATHS:
            if method == "GET":
                scope = {**scope, "method": "POST"}
            elif method != "POST":
                refused = json_response({"error": f"{path} answers GET and POST."}, 405, {"Allow": ALLOW})
                return await refused(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0")
        limit = self.settings.max_body_bytes
        if not length.isdigit():
            return await self._reply(send, 400, "The Content-Length header must be a number of bytes.")
        if int(length) > limit:
            return await self._reply(send, 413, _too_large(limit))
        if scope["method"] == "POST":
            media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
            if media not in (b"application/json", b""):
                return await self._reply(
                    send, 415, "The request body must be JSON (Content-Type: application/json)."
                )
            try:
                body = await read_body(receive, limit)
            except BodyTooLarge:
                return await self._reply(send, 413, _too_large(limit))
            if body is None:  # the client left
                return None
            if self.settings.fast_lane and path in FAST_LANE:
                return await self._fast_lane(scope, receive, send, body)
            receive = _replay(body, receive)
        return await self.app(scope, receive, _NameTheField(send, self._request_fields().get(path)))

    async def _fast_lane(self, scope: dict, receive: Any, send: Any, body: bytes) -> None:
        """Answer a hot endpoint here: validate the body with its request model, call its method."""
        model, handler = FAST_LANE[scope["path"]]
        try:
            request = model.model_validate_json(body or b"{}")
        except ValidationError as exc:
            details = exc.errors(include_context=False, include_input=False, include_url=False)
            response = json_response(validation_payload(details, list(model.model_fields)), 400)
        else:
            service = bentoml.get_current_service()
            response = getattr(service, handler)(
                **{k: getattr(request, k) for k in type(request).model_fields}
            )
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)

    async def _openapi_document(self, scope: dict, receive: Any, send: Any) -> None:
        categories = _loaded_categories()
        if self._openapi is None or self._openapi[0] != categories:  # else only a reload changes it
            document = openapi_document(self.service, self.settings, categories)
            self._openapi = (categories, json.dumps(document, separators=(",", ":")).encode())
        response = Response(self._openapi[1], media_type="application/json")
        await response(scope, receive, send)

    def _request_fields(self) -> dict[str, list[str]]:
        """route -> the field names of its request model (for the message about an unknown field)."""
        if self._fields is None:
            apis = self.service.apis.values() if self.service is not None else ()
            self._fields = {api.route: list(api.input_spec.model_fields) for api in apis}
        return self._fields

    @staticmethod
    async def _reply(send: Any, status: int, message: str) -> None:
        body = json.dumps({"error": message}, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if status == 413:
            headers.append((b"connection", b"close"))  # the rest of the body is never read
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _served(path: str, scope: dict) -> bool:
    """Whether the path answers this method (others get 405 from the router)."""
    return scope.get("method") in (("GET", "POST") if path in GET_AND_POST_PATHS else ("POST",))


def _loaded_categories() -> list[str] | None:
    """The categories of the catalogue being served (what ``categories`` may hold), if loaded."""
    try:
        state = getattr(bentoml.get_current_service(), "_state", None)
    except BentoMLException:  # not started yet
        return None
    return None if state is None else state.retrieval.masks.known_categories


def _too_large(limit: int) -> str:
    return f"The request body is larger than the limit of {limit:,} bytes (CRM_MAX_BODY_BYTES)."


async def read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None when the client disconnected; :class:`BodyTooLarge` as soon
    as more than ``limit`` bytes have arrived (whatever Content-Length said)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge
        if not message.get("more_body"):
            return bytes(body)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the body already read to the app, then waits on the client."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class _NameTheField:
    """Rewrites BentoML's 400 body ("1 validation error for Input") into one sentence per field.

    Only 400 responses are buffered; every other response passes through untouched.
    """

    def __init__(self, send: Any, fields: list[str] | None = None) -> None:
        self.send = send
        self.fields = fields
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
                body = json.dumps(validation_payload(details, self.fields), separators=(",", ":")).encode()
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


# ---------------------------------------------------------------------------------------------
# the HTTP parser


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on each request's line and headers.

    The deadline (``CRM_HEADER_TIMEOUT_SECONDS``) runs from the connection's opening, or from the
    first byte of a later request on it, to the end of the headers: past it the client gets 408
    and the connection closes. Past ``CRM_MAX_HEADER_BYTES`` of request line and headers it gets
    431, before the rest is read. Nothing else of uvicorn's behaviour changes.
    """

    header_timeout: ClassVar[float] = 10.0
    max_header_bytes: ClassVar[int] = 16 * 1024

    @classmethod
    def configure(cls, settings: ServiceSettings) -> None:
        """Take the limits of ``settings`` (every connection opened after this call)."""
        cls.header_timeout = settings.header_timeout_seconds
        cls.max_header_bytes = settings.max_header_bytes

    def connection_made(self, transport: Any) -> None:
        self._header_bytes = 0
        self._refused = False
        self._header_deadline: Any = None
        super().connection_made(transport)
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:  # after a refusal the connection is closing: the rest is not parsed
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm_deadline()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # the parser stops with an error after a refusal: one answer only
            super().send_400_response(msg)

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes:
            self._refuse(
                431,
                f"The request line and headers are larger than {self.max_header_bytes:,} bytes"
                " (CRM_MAX_HEADER_BYTES).",
            )
            raise HeadersTooLarge  # stops the parser (uvicorn's 400 for a parser error is skipped)

    def _arm_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self._refuse(
                408,
                f"The request headers did not arrive within {self.header_timeout:g} s"
                " (CRM_HEADER_TIMEOUT_SECONDS).",
            )

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        self._cancel_deadline()
        body = json.dumps({"error": message}).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def bound_http_parser() -> None:
    """Make uvicorn parse HTTP with :class:`BoundedHttpToolsProtocol` in this process.

    Called where the service is declared: BentoML's worker imports the service, then builds
    uvicorn's configuration, which looks the parser up by name (``auto`` and ``httptools``).
    """
    from uvicorn.config import HTTP_PROTOCOLS

    name = f"{__name__}:{BoundedHttpToolsProtocol.__name__}"
    HTTP_PROTOCOLS["auto"] = HTTP_PROTOCOLS["httptools"] = name
