"""Bad input to the admin API: always a 400 with a clear message, nothing changed, the server never wedges."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stub_api.helpers import StubClient

BAD_PATCHES: list[tuple[Any, str]] = [
    ({"mode": "down"}, "mode must be one of 'up', 'error', 'timeout', 'reset'; got 'down'"),
    ({"mode": None}, "mode must be one of"),
    ({"error_rate": 1.5}, "error_rate must be >= 0 and <= 1, got 1.5"),
    ({"error_rate": -0.1}, "error_rate must be >= 0 and <= 1"),
    ({"error_rate": "0.5"}, "error_rate must be a number, got '0.5'"),
    ({"error_rate": True}, "error_rate must be a number, got true"),
    ({"error_status": 404}, "error_status must be one of 500, 502, 503, 429; got 404"),
    ({"latency_ms": -5}, "latency_ms must be >= 0 and <= 300000, got -5"),
    ({"latency_ms": 1e9}, "latency_ms must be >= 0"),
    ({"latency_p99_ms": -1}, "latency_p99_ms must be >= 0"),
    ({"latency_ms": 100, "latency_p99_ms": 50}, "latency_p99_ms (50) must be >= latency_ms (100)"),
    ({"latency_model": "gamma"}, "latency_model must be one of 'fixed', 'uniform', 'lognormal'"),
    ({"latency_model": "lognormal"}, "latency_model 'lognormal' needs latency_p99_ms"),
    ({"latency_model": "lognormal", "latency_ms": 0, "latency_p99_ms": 10}, "needs latency_ms > 0"),
    ({"retry_after_s": 1.5}, "retry_after_s must be an integer"),
    ({"timeout_cap_s": 0}, "timeout_cap_s must be >= 0.1"),
    ({"seed": -1}, "seed must be between 0 and"),
    ({"cache_control": 5}, "cache_control must be a string (or null)"),
    ({"cache_control": "max-age=1\r\nX: y"}, "printable ASCII"),
    ({"bogus": 1}, "unknown field 'bogus' in the fault patch; known fields: mode, error_rate"),
    ({"routes": []}, "routes must be a JSON object"),
    ({"routes": {"items": {}}}, "routes keys are paths or route templates"),
    ({"routes": {"/items/{id}": {"mode": "sleep"}}}, "routes['/items/{id}'].mode must be one of"),
    ({"routes": {"/x": {"latency_ms": 10, "latency_p99_ms": 5}}}, "routes['/x']: latency_p99_ms (5) must be >="),
    ({"routes": {"/x": {"outage": []}}}, "unknown field 'outage' in routes['/x']"),
    ({"routes": {"/x": 3}}, "routes['/x'] must be a JSON object"),
    ({"outage": {"mode": "error"}}, "outage must be a list of windows"),
    (
        {"outage": [{"mode": "up", "start_s": 1, "duration_s": 1}]},
        "outage[0].mode must be one of 'error', 'timeout', 'reset'; got 'up'",
    ),
    ({"outage": [{"mode": "error", "start_s": -1, "duration_s": 1}]}, "outage[0].start_s must be >= 0"),
    ({"outage": [{"mode": "error", "start_s": 1, "duration_s": 0}]}, "outage[0].duration_s must be > 0"),
    ({"outage": [{"mode": "error", "start_s": 1}]}, "outage[0] needs 'duration_s'"),
    ({"outage": [{"mode": "error", "start_s": 1, "duration_s": 1, "x": 1}]}, "unknown field 'x' in outage[0]"),
    ([1, 2], "the fault patch must be a JSON object"),
    ("up", "the fault patch must be a JSON object"),
]


@pytest.mark.parametrize(("patch", "message"), BAD_PATCHES, ids=[str(i) for i in range(len(BAD_PATCHES))])
def test_bad_fault_patch_is_a_400_with_a_clear_message(stub: StubClient, patch: Any, message: str) -> None:
    before = stub.admin("GET", "faults")
    reply = stub.request("POST", "/__admin/faults", body=json.dumps(patch))
    assert reply.status == 400
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert message in reply.json()["error"]
    assert stub.admin("GET", "faults") == before, "a rejected patch changes nothing"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b"{", "request body is not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        (b'{"mode": "error",}', "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"latency_ms": NaN}', "latency_ms must be a finite number"),
        (b'{"error_rate": Infinity}', "error_rate must be a finite number"),
    ],
)
def test_malformed_bodies(stub: StubClient, body: bytes, message: str) -> None:
    reply = stub.request("POST", "/__admin/faults", body=body)
    assert reply.status == 400
    assert message in reply.json()["error"]


def test_oversized_body_is_refused(stub: StubClient) -> None:
    reply = stub.request("POST", "/__admin/faults", body=b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    assert reply.status == 413
    assert stub.admin("GET", "health") == {"status": "ok"}


def test_a_valid_patch_merges(stub: StubClient) -> None:
    state = stub.faults(error_rate=0.25)
    state = stub.faults(error_status=429, latency_ms=5)
    assert (state["error_rate"], state["error_status"], state["latency_ms"]) == (0.25, 429, 5.0)
    state = stub.faults(latency_p99_ms=50)
    assert state["latency_model"] == "lognormal"
    state = stub.faults(latency_p99_ms=None)
    assert (state["latency_model"], state["latency_p99_ms"]) == ("fixed", None)
    state = stub.faults(routes={"/a": {"latency_p99_ms": 9, "latency_ms": 1}})
    assert state["routes"] == {"/a": {"latency_model": "lognormal", "latency_ms": 1.0, "latency_p99_ms": 9.0}}
    roundtrip = stub.request("POST", "/__admin/faults", body=json.dumps(stub.admin("GET", "faults")))
    assert roundtrip.status == 200, "GET's answer is a valid patch (read-only fields are ignored)"


def test_admin_unknown_route_and_method(stub: StubClient) -> None:
    assert stub.get("/__admin/nope").status == 404
    assert stub.get("/__admin/nope").json()["error"] == "no such resource: /__admin/nope"
    assert stub.request("DELETE", "/__admin/faults").status == 405
    redirect = stub.get("/__admin")
    assert redirect.status == 302
    assert redirect.headers["Location"] == "/__admin/"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["up", "error", "timeout", "reset", "fixed", "uniform", "lognormal", "", "/x", "max-age=1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(
    [
        "mode",
        "error_rate",
        "error_status",
        "retry_after_s",
        "latency_model",
        "latency_ms",
        "latency_p99_ms",
        "cache_control",
        "timeout_cap_s",
        "seed",
        "routes",
        "outage",
        "effective_mode",
        "other",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(patch=st.dictionaries(field_names, json_values, max_size=4))
def test_random_patches_never_break_the_server(stub: StubClient, patch: dict[str, Any]) -> None:
    reply = stub.request("POST", "/__admin/faults", body=json.dumps(patch), timeout=5)
    assert reply.status in (200, 400), reply.body
    if reply.status == 400:
        assert isinstance(reply.json()["error"], str)
    assert stub.admin("GET", "health") == {"status": "ok"}
    stub.reset()
