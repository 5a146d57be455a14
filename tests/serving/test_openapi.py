"""The OpenAPI document says what the service does: the project's title and version, an example
of every request, the error bodies and statuses as they are, the security scheme, GET /info."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from serving.config import ServiceSettings
from serving.openapi import TITLE, openapi_document


@pytest.fixture(scope="module")
def service():
    from serving.service import CRMService

    return CRMService


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_page_has_the_projects_title_description_and_version(service):
    info = openapi_document(service, ServiceSettings())["info"]
    assert info["title"] == TITLE and info["version"] == version("crm-ml")
    assert "BentoML" not in info["description"] and "CRM" in info["description"]


def test_every_request_has_an_example_its_model_accepts(service):
    document = openapi_document(service, ServiceSettings())
    for api in service.apis.values():
        media = document["paths"][api.route]["post"]["requestBody"]["content"]["application/json"]
        assert "example" in media, api.route
        api.input_spec.model_validate(media["example"])  # raises when the example is invalid


def test_the_400_body_is_documented_as_it_is(client, service):
    document = openapi_document(service, ServiceSettings())
    schemas = document["components"]["schemas"]
    body = schemas["ErrorBody"]["properties"]
    assert body["detail"]["type"] == "array" and body["field"]["type"] == "string"
    for _, _, operation in operations(document):
        if "requestBody" in operation:
            assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
    got = client.post("/recommend", json={"customer_id": "C1", "k": "5"}).json()
    assert set(got) == set(body) and isinstance(got["detail"], list)
    assert set(got["detail"][0]) <= set(schemas["ValidationDetail"]["properties"])


def test_nullable_fields_say_so(service):
    document = openapi_document(service, ServiceSettings())
    for path in ("/info", "/reload"):
        properties = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
        assert properties["properties"]["last_reload_error"]["nullable"] is True
        assert properties["properties"]["ready"].get("nullable") is None
    assert '"type": "null"' not in str(document).replace("'", '"')  # OpenAPI 3.0 has no null type


def test_only_what_answers_is_listed(service):
    document = openapi_document(service, ServiceSettings())
    assert "/metrics" not in document["paths"]  # metrics are off: it answers 404
    assert set(document["paths"]["/info"]) == {"get", "post"}
    assert "requestBody" not in document["paths"]["/info"]["get"]


def test_statuses_and_security_follow_the_settings(service):
    tokenless = openapi_document(service, ServiceSettings())
    with_token = openapi_document(service, ServiceSettings(api_token="s3cret"))
    opened = openapi_document(service, ServiceSettings(open_operations=True))
    assert with_token["security"] == [{"bearerAuth": []}] and "security" not in tokenless
    assert with_token["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    for path, method, operation in operations(with_token):
        probe = path in ("/healthz", "/livez", "/readyz")
        assert ("401" in operation["responses"]) != probe, (path, method)
        assert (operation.get("security") == []) == probe
        if method == "post":
            assert {"400", "413", "415", "503"} <= set(operation["responses"]), path
    for path in ("/info", "/reload"):
        assert "403" in tokenless["paths"][path]["post"]["responses"]
        assert "403" not in opened["paths"][path]["post"]["responses"]
        assert "403" not in with_token["paths"][path]["post"]["responses"]


def test_the_served_document_lists_the_catalogues_categories(client, serving_env):
    import pandas as pd

    document = client.get("/docs.json").json()
    schema = document["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    categories = pd.read_parquet(serving_env.snapshot / "items.parquet")["category"].unique()
    assert schema["properties"]["categories"]["items"]["enum"] == sorted(categories)
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    "settings", [ServiceSettings(), ServiceSettings(api_token="s3cret")], ids=["open", "token"]
)
def test_the_document_is_valid_openapi_30(service, settings):
    import jsonschema
    from schemathesis.specs.openapi.definitions import OPENAPI_30  # the meta-schema schemathesis checks with

    document = openapi_document(service, settings, categories=["phone", "tv"])
    errors = [
        f"{list(e.path)}: {e.message}" for e in jsonschema.Draft4Validator(OPENAPI_30).iter_errors(document)
    ]
    assert errors == []
