"""The stub's pure parts in-process: latency sampling, fault-state merging and precedence, validators, bodies."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from stub_api.faults import MAX_LATENCY_MS, FaultError, FaultState, Latency
from stub_api.resources import ItemStore, guess_age, not_modified, padded_json, png_image, strong_etag
from tests.stub_api.helpers import percentile

pytestmark = pytest.mark.unit


def _draws(latency: Latency, n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [latency.sample_ms(rng) for _ in range(n)]


def test_lognormal_sampler_hits_p50_and_p99() -> None:
    draws = _draws(Latency("lognormal", 80.0, 900.0), 100_000)
    assert percentile(draws, 0.5) == pytest.approx(80.0, rel=0.03)
    assert percentile(draws, 0.99) == pytest.approx(900.0, rel=0.05)
    assert min(draws) > 0


def test_uniform_sampler_hits_p50_and_p99() -> None:
    draws = _draws(Latency("uniform", 100.0, 180.0), 100_000)
    assert percentile(draws, 0.5) == pytest.approx(100.0, rel=0.02)
    assert percentile(draws, 0.99) == pytest.approx(180.0, rel=0.02)
    wide = _draws(Latency("uniform", 10.0, 100.0), 10_000)
    assert min(wide) == 0.0, "clamped at zero, never negative"
    assert percentile(wide, 0.5) == pytest.approx(10.0, rel=0.1)


def test_fixed_sampler_and_cap() -> None:
    assert set(_draws(Latency("fixed", 42.0, None), 100)) == {42.0}
    huge = _draws(Latency("lognormal", MAX_LATENCY_MS / 2, MAX_LATENCY_MS), 2_000)
    assert max(huge) == MAX_LATENCY_MS


def test_same_seed_same_draws() -> None:
    latency = Latency("lognormal", 10.0, 100.0)
    assert _draws(latency, 50, seed=5) == _draws(latency, 50, seed=5)
    assert _draws(latency, 50, seed=5) != _draws(latency, 50, seed=6)


def _apply(state: FaultState, patch: Any, now: float = 1000.0) -> FaultState:
    return state.apply(patch, now_mono=now, now_wall=1_700_000_000.0 + now)


def test_mode_precedence_outage_then_route_then_global() -> None:
    state = _apply(
        FaultState(),
        {
            "mode": "error",
            "routes": {"/items/{id}": {"mode": "up"}, "/items/7": {"mode": "reset"}},
            "outage": [{"mode": "timeout", "start_s": 10, "duration_s": 5}],
        },
    )
    keys = ("/items/3", "/items/{id}")
    assert state.effective(keys, 1000.0).mode == "up"
    assert state.effective(("/items/7", "/items/{id}"), 1000.0).mode == "reset"
    assert state.effective(("/",), 1000.0).mode == "error"
    assert state.effective(keys, 1009.999).mode == "up"
    assert state.effective(keys, 1010.0).mode == "timeout"
    assert state.effective(("/",), 1014.999).mode == "timeout"
    assert state.effective(keys, 1015.0).mode == "up"
    assert [w.state(1012.0) for w in state.outage] == ["active"]
    assert state.to_json(1012.0)["effective_mode"] == "timeout"
    assert state.outage[0].state(1016.0) == "over"


def test_route_overrides_merge_with_global_settings() -> None:
    state = _apply(
        FaultState(),
        {
            "latency_ms": 10,
            "latency_p99_ms": 100,
            "error_rate": 0.1,
            "cache_control": "max-age=5",
            "routes": {"/slow": {"latency_ms": 50}, "/plain": {"latency_model": "fixed", "cache_control": ""}},
        },
    )
    slow = state.effective(("/slow",), 0.0)
    assert slow.latency == Latency("lognormal", 50.0, 100.0)
    assert (slow.error_rate, slow.cache_control) == (0.1, "max-age=5")
    plain = state.effective(("/plain",), 0.0)
    assert plain.latency.model == "fixed"
    assert plain.cache_control is None
    with pytest.raises(FaultError, match=r"routes\['/slow'\]: latency_p99_ms \(100\) must be >= latency_ms \(200\)"):
        _apply(state, {"routes": {"/slow": {"latency_ms": 200}}})
    with pytest.raises(FaultError, match=r"routes\['/slow'\]: latency_p99_ms \(40\) must be >= latency_ms \(50\)"):
        _apply(state, {"latency_p99_ms": 40, "latency_ms": 5})


def test_patch_is_all_or_nothing() -> None:
    state = _apply(FaultState(), {"error_rate": 0.5})
    with pytest.raises(FaultError):
        _apply(state, {"error_rate": 0.1, "mode": "bogus"})
    assert state.error_rate == 0.5


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "mode",
                        "error_rate",
                        "routes",
                        "outage",
                        "latency_ms",
                        "latency_p99_ms",
                        "/x",
                        "start_s",
                        "duration_s",
                        "cache_control",
                        "latency_model",
                        "seed",
                        "x",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=12,
    )
)
@settings(max_examples=300, deadline=None)
def test_apply_only_ever_raises_fault_error(patch: Any) -> None:
    try:
        state = _apply(FaultState(), patch)
    except FaultError as exc:
        message = str(exc)
        assert message, "a rejection always says why"
        return
    json.dumps(state.to_json(1000.0), allow_nan=False)  # a valid state always serialises to strict JSON
    for window in state.outage:
        assert window.duration_s > 0


def test_not_modified_rules() -> None:
    etag = '"abc"'
    moment = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert not_modified(etag, moment, '"abc"', None)
    assert not_modified(etag, moment, 'W/"abc"', None)
    assert not_modified(etag, moment, '"x", "abc"', None)
    assert not_modified(etag, moment, "*", None)
    assert not not_modified(etag, moment, '"x"', "Mon, 01 Jan 2024 12:00:00 GMT")
    assert not_modified(etag, moment, None, "Mon, 01 Jan 2024 12:00:00 GMT")
    assert not not_modified(etag, moment, None, "Mon, 01 Jan 2024 11:59:59 GMT")
    assert not not_modified(etag, moment, None, "garbage")
    assert not not_modified(etag, None, None, "Mon, 01 Jan 2024 12:00:00 GMT")


def test_items_bump_moves_time_forward_even_within_a_second() -> None:
    store = ItemStore(10)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    first = store.bump(3, now)
    second = store.bump(3, now)
    assert (first.version, second.version) == (2, 3)
    assert second.updated_at == first.updated_at + timedelta(seconds=1)
    store.reset()
    assert store.get(3).version == 1


def test_guess_age_is_stable() -> None:
    assert guess_age("Ada") == guess_age("Ada")
    assert guess_age("Ada")["age"] == guess_age(" ada ")["age"]
    assert guess_age("") == {"count": 0, "name": "", "age": None}


@given(
    st.integers(0, 20_000),
    st.dictionaries(st.text(max_size=5).filter(lambda k: k != "padding"), st.integers() | st.text(max_size=30)),
)
@settings(max_examples=200, deadline=None)
def test_padded_json_is_exact_when_it_can_grow(size: int, obj: dict[str, object]) -> None:
    body = padded_json(obj, size)
    natural = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    assert len(body) == max(size, len(natural))
    decoded = json.loads(body)
    decoded.pop("padding", None)
    assert decoded == obj


@pytest.mark.parametrize("size", [1, 2, 17, 256, 1024])
def test_png_decodes(size: int) -> None:
    data = png_image(size)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.size == (size, size)
        if size > 1:
            assert image.getpixel((0, 0)) != image.getpixel((size - 1, size - 1)), "a gradient, not flat"
    assert strong_etag(data) == strong_etag(png_image(size))
