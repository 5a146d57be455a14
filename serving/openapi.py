"""The OpenAPI document of the service, as it really behaves: served at /docs.json, rendered at /.

BentoML's own document is a template (its title and Slack badges, version ``None``), lists
/metrics although metrics are off, documents every 400 body as a string ``detail``, drops the
``null`` of each top-level optional field, and knows nothing of the Guard (:mod:`serving.http`).
This one is built from the service's endpoints and the pydantic models they take and return:

- the project's title, description and version, and an example of every request;
- the errors as they are: 400 ``{"error", "field", "detail": [...]}``, 401 and a bearer security
  scheme when a token is configured, 403 for /info and /reload when they are off, 413, 415, 431,
  503 while the models are not loaded;
- ``GET /info`` beside ``POST /info``; the probes; OpenAPI 3.0 (``nullable``, not ``null`` types).
"""

from __future__ import annotations

import copy
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from features.vocab import ECOSYSTEM
from serving.config import GET_AND_POST_PATHS, OPERATION_PATHS, ServiceSettings

REF = "#/components/schemas/{model}"
TITLE = "CRM churn and cross-sell service"
PROBES = {
    "/healthz": "200 while the process serves HTTP (even before the models are loaded).",
    "/livez": "The same as /healthz.",
    "/readyz": "200 once the models and the online snapshot are loaded; until then 503, saying why.",
}
ERROR_BODY = {
    "type": "object",
    "title": "ErrorBody",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "One sentence: what is wrong and what was expected."},
        "field": {"type": "string", "description": "The request field at fault (``customer_ids.3``)."},
        "detail": {
            "type": "array",
            "description": "pydantic's errors, one per invalid field (validation errors only).",
            "items": {"$ref": REF.format(model="ValidationDetail")},
        },
    },
}
VALIDATION_DETAIL = {
    "type": "object",
    "title": "ValidationDetail",
    "required": ["type", "loc", "msg"],
    "properties": {
        "type": {"type": "string", "description": "pydantic's error type (``int_type``, ``missing``)."},
        "loc": {
            "type": "array",
            "description": "The path to the field (empty: the body).",
            "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "msg": {"type": "string"},
    },
}


def openapi_document(
    service: Any, settings: ServiceSettings, categories: list[str] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``service`` (a BentoML service) under ``settings``.

    ``categories``: the loaded catalogue's categories, the only values ``categories`` takes.
    """
    components: dict[str, Any] = {"ErrorBody": ERROR_BODY, "ValidationDetail": VALIDATION_DETAIL}
    paths: dict[str, Any] = {path: {"get": _probe(path, settings)} for path in PROBES}
    for api in service.apis.values():
        operation = _operation(service.name, api, settings, components, categories)
        paths[api.route] = {"post": operation}
        if api.route in GET_AND_POST_PATHS:
            paths[api.route]["get"] = {
                **copy.deepcopy(operation),
                "operationId": f"{service.name}__{api.name}_get",
            }
            del paths[api.route]["get"]["requestBody"]
    document = {
        "openapi": "3.0.2",
        "info": {"title": TITLE, "version": _version(), "description": _description(settings)},
        "servers": [{"url": "."}],
        "tags": [
            {"name": "endpoints", "description": "Recommendations and churn."},
            {"name": "operations", "description": "What is loaded, and reloading it."},
            {"name": "probes", "description": "Health and readiness (never need the token)."},
        ],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
    if settings.api_token is not None:
        document["security"] = [{"bearerAuth": []}]
    return openapi_30(document)


def _version() -> str:
    try:
        return version("crm-ml")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


def _description(settings: ServiceSettings) -> str:
    if settings.api_token is not None:
        auth = "Every endpoint but the probes needs the header `Authorization: Bearer <token>` (401 without)."
    elif settings.open_operations:
        auth = (
            "No token is configured: every endpoint is open, /info and /reload too (`CRM_OPEN_OPERATIONS`)."
        )
    else:
        auth = (
            "No token is configured: the endpoints are open, /info and /reload are off (403) until"
            " `CRM_API_TOKEN` is set (or `CRM_OPEN_OPERATIONS=1`)."
        )
    return "\n\n".join(
        [
            "Cross-sell recommendations, churn scores and ranked churn lists for the brand's CRM, from"
            " the champion models of the MLflow registry and the online feature snapshot.",
            auth,
            "Requests are JSON objects (`Content-Type: application/json`, 415 otherwise) of at most"
            f" {settings.max_body_bytes:,} bytes (413 otherwise, `CRM_MAX_BODY_BYTES`); unknown fields"
            ' are refused and values are not coerced (`"5"` is not an integer). A 400 names the field'
            " (`field`) and says what was expected (`error`).",
            "`/readyz` answers 200 once the models are loaded; `/info` tells which versions serve.",
        ]
    )


def _probe(path: str, settings: ServiceSettings) -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    responses = {"200": {"description": "Healthy (the body is a newline).", "content": text}}
    if path == "/readyz":
        responses["503"] = {"description": "Not ready: the body says why.", "content": text}
    responses["431"] = _error(f"The request line and headers pass {settings.max_header_bytes:,} bytes.")
    return {"tags": ["probes"], "description": PROBES[path], "responses": responses, "security": []}


def _operation(
    service_name: str, api: Any, settings: ServiceSettings, components: dict, categories: list[str] | None
) -> dict[str, Any]:
    request = _schema(api.input_spec, "validation", components)
    example = request.pop("example", None)
    for name, values in (("categories", categories), ("owns", ECOSYSTEM)):  # else a 400 names them
        field = request.get("properties", {}).get(name, {})
        for option in [field, *field.get("anyOf", ())]:
            if values and option.get("type") == "array":
                option["items"]["enum"] = list(values)
    media: dict[str, Any] = {"schema": request}
    if example is not None:
        media["example"] = example
    answer = _schema(api.output_spec, "serialization", components)
    doc = (api.doc or "").strip()
    return {
        "tags": ["operations" if api.route in OPERATION_PATHS else "endpoints"],
        "summary": doc.split(";")[0].split(". ")[0].rstrip("."),
        "description": doc,
        "operationId": f"{service_name}__{api.name}",
        "requestBody": {"required": bool(request.get("required")), "content": {"application/json": media}},
        "responses": {
            "200": {"description": "The answer.", "content": {"application/json": {"schema": answer}}},
            **_errors(api.route, settings, answer),
        },
    }


def _schema(model: Any, mode: str, components: dict) -> dict[str, Any]:
    """``model``'s JSON schema, its nested models moved into ``components``."""
    schema = model.model_json_schema(ref_template=REF, mode=mode)
    components.update(schema.pop("$defs", {}))
    schema["title"] = model.__name__.removesuffix("IODescriptor")
    return schema


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
    }


def _errors(route: str, settings: ServiceSettings, answer: dict) -> dict[str, Any]:
    responses = {
        "400": _error(
            "Invalid request: `error` says which field is wrong and what was expected, `field` names"
            " it, `detail` holds pydantic's errors; also for several Authorization headers."
        ),
        "413": _error(f"The body is larger than {settings.max_body_bytes:,} bytes (`CRM_MAX_BODY_BYTES`)."),
        "415": _error("The body is not JSON (`Content-Type` must be `application/json`)."),
        "431": _error(f"The request line and headers pass {settings.max_header_bytes:,} bytes."),
        "500": _error("An unexpected error: see the server log."),
        "503": _error(
            "The models are not loaded yet, or failed to load (/readyz and /info say why), or the"
            " optional model this answer needs (value: /winback_list, uplift: /retention_plan) is"
            " not registered."
        ),
    }
    if settings.api_token is not None:
        responses["401"] = {
            **_error("Missing or wrong bearer token."),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string", "enum": ["Bearer"]}}},
        }
    elif route in OPERATION_PATHS and not settings.open_operations:
        responses["403"] = _error(
            "Off: the service has no token (`CRM_API_TOKEN`, or `CRM_OPEN_OPERATIONS=1`)."
        )
    if route == "/retention_plan":
        responses["404"] = _error("The loaded uplift model has no learner for the offer asked for.")
    if route == "/reload":
        responses["503"] = {
            "description": "The reload failed (the current models keep serving) or is still running.",
            "content": {"application/json": {"schema": answer}},
        }
    return dict(sorted(responses.items()))


def openapi_30(node: Any) -> Any:
    """JSON Schema (pydantic) to OpenAPI 3.0: ``anyOf [X, null]`` -> X with ``nullable``, ``const``
    -> a one-value ``enum``."""
    if isinstance(node, list):
        return [openapi_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: openapi_30(v) for k, v in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" in rest[0]:
            node["allOf"] = rest  # a $ref takes no siblings in 3.0
        elif len(rest) == 1:
            node.update(rest[0])
            if "enum" in node:  # 3.0: null is valid only when the enum lists it too
                node["enum"] = [*node["enum"], None]
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node
