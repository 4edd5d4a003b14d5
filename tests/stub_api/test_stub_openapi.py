"""The published OpenAPI document: valid, served, and in step with the routes and the JSON the server sends."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_schema_validator import validate as validate_instance
from openapi_spec_validator import validate

from stub_api.config import StubConfig
from stub_api.server import create_app
from tests.stub_api.helpers import StubClient

DOCUMENT: dict[str, Any] = json.loads(resources.files("stub_api").joinpath("openapi.json").read_text())


def _schema(name: str) -> dict[str, Any]:
    """A component schema with the whole document alongside, so its $refs resolve."""
    return {**DOCUMENT["components"]["schemas"][name], "components": DOCUMENT["components"]}


def test_document_is_valid_openapi() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


def test_document_is_served(stub: StubClient) -> None:
    reply = stub.get("/__admin/openapi.json")
    assert reply.status == 200
    assert reply.json() == DOCUMENT


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    app = create_app(StubConfig())
    served: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("GET", "POST") and path != "/__admin":  # /__admin only redirects to /__admin/
            served.add((path, route.method.lower()))
    documented = {(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert served == documented


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("/__admin/stats", "Stats"),
        ("/__admin/faults", "FaultState"),
        ("/__admin/health", "Health"),
        ("/items/3", "Item"),
        ("/items?size=3", "ItemPage"),
        ("/?name=x", "AgeGuess"),
        ("/?name=", "AgeGuess"),
        ("/session", "Session"),
        ("/echo", "Echo"),
        ("/items/0", "Error"),
        ("/__admin/items/2", "Item"),
    ],
)
def test_answers_match_their_schemas(stub: StubClient, path: str, schema: str) -> None:
    stub.faults(routes={"/x": {"latency_ms": 1}}, outage=[{"mode": "error", "start_s": 60, "duration_s": 1}])
    stub.get("/items/1")
    validate_instance(stub.get(path).json(), _schema(schema), cls=OAS31Validator)


def test_fault_state_schema_lists_exactly_the_fields_sent(stub: StubClient) -> None:
    state = stub.admin("GET", "faults")
    assert set(state) == set(DOCUMENT["components"]["schemas"]["FaultState"]["required"])
    patch_fields = set(DOCUMENT["components"]["schemas"]["FaultPatch"]["properties"])
    assert patch_fields == set(state), "every field of the state can be posted (effective_mode is ignored)"
    stats = stub.stats()
    assert set(stats) == set(DOCUMENT["components"]["schemas"]["Stats"]["required"])
    validate_instance(stub.reset(), _schema("ResetAnswer"), cls=OAS31Validator)


def test_schemas_reject_what_the_server_rejects(stub: StubClient) -> None:
    validator = OAS31Validator(_schema("FaultPatch"))
    bad_patches: list[dict[str, Any]] = [
        {"mode": "down"},
        {"error_rate": 2},
        {"error_status": 404},
        {"latency_ms": -1},
        {"x": 1},
        {"outage": [{"mode": "up", "start_s": 1, "duration_s": 1}]},
    ]
    for bad in bad_patches:
        assert not validator.is_valid(bad), bad
        assert stub.request("POST", "/__admin/faults", body=json.dumps(bad)).status == 400
    good = {
        "mode": "error",
        "outage": [{"mode": "reset", "start_s": 0, "duration_s": 5}],
        "routes": {"/items/{id}": {"cache_control": "max-age=60"}, "/x": None},
    }
    assert validator.is_valid(good)
    assert stub.request("POST", "/__admin/faults", body=json.dumps(good)).status == 200
