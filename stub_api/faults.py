"""The stub's fault state: modes, error injection, the latency model, per-route overrides, outage windows.

Pure logic, no I/O: the server keeps one `FaultState`, replaces it with `state.apply(patch, ...)` on every
`POST /__admin/faults` (a patch merges into the current state; every problem raises `FaultError` with a
message meant for the person who sent it) and asks `state.effective(...)` what to do with each request.

One module on purpose: the value checks, the latency model, route overrides and outage windows are the parts of
one value, `FaultState`, and of one grammar, the fault patch (the admin API's `POST /__admin/faults`). Each part
checks its slice of the same patch with the same checks and messages, and `apply`, `effective` and `to_json` walk
all of them; a change to the patch (a new field) touches every section at once. Split, each part would import the
checks and the state every part, and no reader needs one without the others.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

MODES: tuple[str, ...] = ("up", "error", "timeout", "reset")
OUTAGE_MODES: tuple[str, ...] = ("error", "timeout", "reset")
ERROR_STATUSES: tuple[int, ...] = (500, 502, 503, 429)
LATENCY_MODELS: tuple[str, ...] = ("fixed", "uniform", "lognormal")

MAX_LATENCY_MS = 300_000.0
MAX_WINDOW_S = 86_400.0
MAX_WINDOWS = 100
MAX_ROUTES = 100
MAX_ROUTE_KEY = 200
MAX_CACHE_CONTROL = 500
MAX_RETRY_AFTER_S = 86_400
MIN_TIMEOUT_CAP_S = 0.1
MAX_TIMEOUT_CAP_S = 3_600.0
MAX_SEED = 2**63 - 1

# The standard normal's 99th percentile: a log-normal with median m and 99th percentile q has
# sigma = ln(q / m) / Z99. A uniform U[m - j, m + j] has its 99th percentile at m + 0.98 j.
Z99 = NormalDist().inv_cdf(0.99)
UNIFORM_P99_SPAN = 0.98

READ_ONLY_FIELDS: frozenset[str] = frozenset({"effective_mode"})
WINDOW_READ_ONLY_FIELDS: frozenset[str] = frozenset({"starts_at", "ends_at", "state"})
ROUTE_FIELDS: tuple[str, ...] = (
    "mode",
    "error_rate",
    "error_status",
    "retry_after_s",
    "latency_model",
    "latency_ms",
    "latency_p99_ms",
    "cache_control",
)
TOP_FIELDS: tuple[str, ...] = (*ROUTE_FIELDS, "timeout_cap_s", "seed", "routes", "outage")


class FaultError(ValueError):
    """A fault patch that cannot be applied; the message says why, in the caller's terms."""


# ---------------------------------------------------------------------------------------------- values


def _number(value: object, name: str, *, lo: float, hi: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{name} must be a number, got {_show(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise FaultError(f"{name} must be a finite number, got {_show(value)}")
    if number < lo or (lo_open and number == lo) or number > hi:
        low = f"> {lo:g}" if lo_open else f">= {lo:g}"
        raise FaultError(f"{name} must be {low} and <= {hi:g}, got {_show(value)}")
    return number


def _integer(value: object, name: str, *, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"{name} must be an integer, got {_show(value)}")
    if value < lo or value > hi:
        raise FaultError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _choice(value: object, name: str, choices: Sequence[object]) -> Any:
    if isinstance(value, bool) or not any(type(value) is type(c) and value == c for c in choices):
        listed = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices)
        raise FaultError(f"{name} must be one of {listed}; got {_show(value)}")
    return value


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else _json_like(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_like(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_cache_control(value: object, name: str) -> str:
    """A Cache-Control value: printable ASCII on one line, bounded; '' means 'send no Cache-Control'."""
    if not isinstance(value, str):
        raise FaultError(f"{name} must be a string (or null), got {_show(value)}")
    if len(value) > MAX_CACHE_CONTROL:
        raise FaultError(f"{name} is longer than {MAX_CACHE_CONTROL} characters")
    if any(not (" " <= ch <= "~") for ch in value):
        raise FaultError(f"{name} must be printable ASCII on one line, got {_show(value)}")
    return value.strip()


def _latency_ms(value: object, name: str) -> float:
    return _number(value, name, lo=0.0, hi=MAX_LATENCY_MS)


def _object(value: object, name: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise FaultError(f"{name} must be a JSON object, got {_show(value)}")
    return value


def _reject_unknown(patch: Mapping[str, object], known: Sequence[str], ignored: frozenset[str], where: str) -> None:
    for key in patch:
        if key not in known and key not in ignored:
            raise FaultError(f"unknown field {key!r} in {where}; known fields: {', '.join(known)}")


# ---------------------------------------------------------------------------------------------- latency


@dataclass(frozen=True)
class Latency:
    """How long to wait before answering. p50_ms is the median; p99_ms shapes uniform and log-normal."""

    model: str = "fixed"
    p50_ms: float = 0.0
    p99_ms: float | None = None

    def check(self, where: str) -> None:
        if self.p99_ms is not None and self.p99_ms < self.p50_ms:
            raise FaultError(f"{where}latency_p99_ms ({self.p99_ms:g}) must be >= latency_ms ({self.p50_ms:g})")
        if self.model == "lognormal":
            if self.p99_ms is None:
                raise FaultError(f"{where}latency_model 'lognormal' needs latency_p99_ms")
            if self.p50_ms <= 0:
                raise FaultError(f"{where}latency_model 'lognormal' needs latency_ms > 0")

    def sample_ms(self, rng: random.Random) -> float:
        """One latency in milliseconds (always draws one normal variate, so seeded runs repeat exactly)."""
        z = rng.gauss(0.0, 1.0)
        u = rng.random()
        if self.model == "uniform":
            jitter = self.p50_ms if self.p99_ms is None else (self.p99_ms - self.p50_ms) / UNIFORM_P99_SPAN
            value = self.p50_ms - jitter + 2.0 * jitter * u
        elif self.model == "lognormal" and self.p99_ms is not None and self.p50_ms > 0:
            sigma = math.log(self.p99_ms / self.p50_ms) / Z99
            value = self.p50_ms * math.exp(sigma * z)
        else:
            value = self.p50_ms
        return min(max(value, 0.0), MAX_LATENCY_MS)


def _model_after_patch(patch: Mapping[str, object], current: str, where: str) -> str:
    """`latency_p99_ms` without `latency_model` switches to log-normal (and back to fixed when cleared)."""
    if patch.get("latency_model") is not None:
        return str(_choice(patch["latency_model"], f"{where}latency_model", LATENCY_MODELS))
    if "latency_p99_ms" in patch:
        if patch["latency_p99_ms"] is not None:
            return "lognormal"
        if current == "lognormal":
            return "fixed"
    return current


# ---------------------------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class RouteOverride:
    """Per-route settings; None means 'as the global state says'. cache_control '' means 'no header'."""

    mode: str | None = None
    error_rate: float | None = None
    error_status: int | None = None
    retry_after_s: int | None = None
    latency_model: str | None = None
    latency_ms: float | None = None
    latency_p99_ms: float | None = None
    cache_control: str | None = None

    @classmethod
    def parse(cls, key: str, raw: object) -> RouteOverride:
        where = f"routes[{key!r}]"
        patch = _object(raw, where)
        _reject_unknown(patch, ROUTE_FIELDS, frozenset(), where)
        values: dict[str, Any] = {}
        if patch.get("mode") is not None:
            values["mode"] = _choice(patch["mode"], f"{where}.mode", MODES)
        if patch.get("error_rate") is not None:
            values["error_rate"] = _number(patch["error_rate"], f"{where}.error_rate", lo=0.0, hi=1.0)
        if patch.get("error_status") is not None:
            values["error_status"] = _choice(patch["error_status"], f"{where}.error_status", ERROR_STATUSES)
        if patch.get("retry_after_s") is not None:
            values["retry_after_s"] = _integer(
                patch["retry_after_s"], f"{where}.retry_after_s", lo=0, hi=MAX_RETRY_AFTER_S
            )
        if patch.get("latency_ms") is not None:
            values["latency_ms"] = _latency_ms(patch["latency_ms"], f"{where}.latency_ms")
        if patch.get("latency_p99_ms") is not None:
            values["latency_p99_ms"] = _latency_ms(patch["latency_p99_ms"], f"{where}.latency_p99_ms")
        if patch.get("latency_model") is not None or patch.get("latency_p99_ms") is not None:
            values["latency_model"] = _model_after_patch(patch, "fixed", f"{where}.")
        if patch.get("cache_control") is not None:
            values["cache_control"] = check_cache_control(patch["cache_control"], f"{where}.cache_control")
        return cls(**values)

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


# ---------------------------------------------------------------------------------------------- outages


@dataclass(frozen=True)
class OutageWindow:
    """A scheduled whole-service outage: `mode` from `start_s` after it was posted, for `duration_s`."""

    mode: str
    start_s: float
    duration_s: float
    starts_mono: float
    starts_at: float

    @property
    def ends_mono(self) -> float:
        return self.starts_mono + self.duration_s

    def state(self, now_mono: float) -> str:
        if now_mono < self.starts_mono:
            return "pending"
        return "active" if now_mono < self.ends_mono else "over"

    @classmethod
    def parse(cls, index: int, raw: object, now_mono: float, now_wall: float) -> OutageWindow:
        where = f"outage[{index}]"
        patch = _object(raw, where)
        _reject_unknown(patch, ("mode", "start_s", "duration_s"), WINDOW_READ_ONLY_FIELDS, where)
        for name in ("mode", "start_s", "duration_s"):
            if name not in patch:
                raise FaultError(
                    f'{where} needs {name!r} (windows look like {{"mode": "error", "start_s": 30, "duration_s": 20}})'
                )
        mode = _choice(patch["mode"], f"{where}.mode", OUTAGE_MODES)
        start = _number(patch["start_s"], f"{where}.start_s", lo=0.0, hi=MAX_WINDOW_S)
        duration = _number(patch["duration_s"], f"{where}.duration_s", lo=0.0, hi=MAX_WINDOW_S, lo_open=True)
        return cls(
            mode=mode, start_s=start, duration_s=duration, starts_mono=now_mono + start, starts_at=now_wall + start
        )

    def to_json(self, now_mono: float) -> dict[str, object]:
        return {
            "mode": self.mode,
            "start_s": self.start_s,
            "duration_s": self.duration_s,
            "starts_at": round(self.starts_at, 3),
            "ends_at": round(self.starts_at + self.duration_s, 3),
            "state": self.state(now_mono),
        }


# ---------------------------------------------------------------------------------------------- the state


@dataclass(frozen=True)
class Effective:
    """What to do with one request, all overrides resolved."""

    mode: str
    error_rate: float
    error_status: int
    retry_after_s: int
    latency: Latency
    cache_control: str | None
    timeout_cap_s: float


@dataclass(frozen=True)
class FaultState:
    mode: str = "up"
    error_rate: float = 0.0
    error_status: int = 500
    retry_after_s: int = 1
    latency_model: str = "fixed"
    latency_ms: float = 0.0
    latency_p99_ms: float | None = None
    cache_control: str | None = None
    timeout_cap_s: float = 300.0
    seed: int = 0
    routes: Mapping[str, RouteOverride] = field(default_factory=dict)
    outage: tuple[OutageWindow, ...] = ()

    def apply(self, raw: object, *, now_mono: float, now_wall: float) -> FaultState:
        """A new state: this one with `raw` (a decoded JSON object) merged in. Raises FaultError."""
        patch = _object(raw, "the fault patch")
        _reject_unknown(patch, TOP_FIELDS, READ_ONLY_FIELDS, "the fault patch")
        values: dict[str, Any] = {}
        if "mode" in patch:
            values["mode"] = _choice(patch["mode"], "mode", MODES)
        if "error_rate" in patch:
            values["error_rate"] = _number(patch["error_rate"], "error_rate", lo=0.0, hi=1.0)
        if "error_status" in patch:
            values["error_status"] = _choice(patch["error_status"], "error_status", ERROR_STATUSES)
        if "retry_after_s" in patch:
            values["retry_after_s"] = _integer(patch["retry_after_s"], "retry_after_s", lo=0, hi=MAX_RETRY_AFTER_S)
        if "latency_ms" in patch:
            values["latency_ms"] = _latency_ms(patch["latency_ms"], "latency_ms")
        if "latency_p99_ms" in patch:
            raw_p99 = patch["latency_p99_ms"]
            values["latency_p99_ms"] = None if raw_p99 is None else _latency_ms(raw_p99, "latency_p99_ms")
        if "latency_model" in patch:
            _choice(patch["latency_model"], "latency_model", LATENCY_MODELS)
        values["latency_model"] = _model_after_patch(patch, self.latency_model, "")
        if "cache_control" in patch:
            raw_cc = patch["cache_control"]
            values["cache_control"] = None if raw_cc is None else check_cache_control(raw_cc, "cache_control") or None
        if "timeout_cap_s" in patch:
            values["timeout_cap_s"] = _number(
                patch["timeout_cap_s"], "timeout_cap_s", lo=MIN_TIMEOUT_CAP_S, hi=MAX_TIMEOUT_CAP_S
            )
        if "seed" in patch:
            values["seed"] = _integer(patch["seed"], "seed", lo=0, hi=MAX_SEED)
        if "routes" in patch:
            values["routes"] = self._patched_routes(patch["routes"])
        if "outage" in patch:
            windows = patch["outage"]
            if not isinstance(windows, list):
                raise FaultError(f"outage must be a list of windows, got {_show(windows)}")
            if len(windows) > MAX_WINDOWS:
                raise FaultError(f"outage holds at most {MAX_WINDOWS} windows, got {len(windows)}")
            values["outage"] = tuple(OutageWindow.parse(i, w, now_mono, now_wall) for i, w in enumerate(windows))
        state = dataclasses.replace(self, **values)
        state.check()
        return state

    def _patched_routes(self, raw: object) -> dict[str, RouteOverride]:
        """Each key replaces that route's override; a null value removes it."""
        patch = _object(raw, "routes")
        routes = dict(self.routes)
        for key, value in patch.items():
            if not key.startswith("/") or len(key) > MAX_ROUTE_KEY:
                raise FaultError(
                    f"routes keys are paths or route templates such as '/items/{{id}}' or '/items/7' "
                    f"(starting with '/', at most {MAX_ROUTE_KEY} characters); got {key!r}"
                )
            if value is None:
                routes.pop(key, None)
            else:
                routes[key] = RouteOverride.parse(key, value)
        if len(routes) > MAX_ROUTES:
            raise FaultError(f"at most {MAX_ROUTES} route overrides, got {len(routes)}")
        return routes

    def check(self) -> None:
        Latency(self.latency_model, self.latency_ms, self.latency_p99_ms).check("")
        for key, override in self.routes.items():
            self._resolve(override, None).latency.check(f"routes[{key!r}]: ")

    def _resolve(self, override: RouteOverride | None, outage_mode: str | None) -> Effective:
        o = override or RouteOverride()
        mode = outage_mode or o.mode or self.mode
        latency = Latency(
            model=o.latency_model or self.latency_model,
            p50_ms=self.latency_ms if o.latency_ms is None else o.latency_ms,
            p99_ms=self.latency_p99_ms if o.latency_p99_ms is None else o.latency_p99_ms,
        )
        cache_control = self.cache_control if o.cache_control is None else (o.cache_control or None)
        return Effective(
            mode=mode,
            error_rate=self.error_rate if o.error_rate is None else o.error_rate,
            error_status=o.error_status or self.error_status,
            retry_after_s=self.retry_after_s if o.retry_after_s is None else o.retry_after_s,
            latency=latency,
            cache_control=cache_control,
            timeout_cap_s=self.timeout_cap_s,
        )

    def active_outage(self, now_mono: float) -> OutageWindow | None:
        for window in self.outage:
            if window.state(now_mono) == "active":
                return window
        return None

    def effective(self, route_keys: Sequence[str], now_mono: float) -> Effective:
        """Settings for a request whose path / route template are `route_keys` (first match wins).

        Precedence of the mode: an active outage window, then the route's mode, then the global mode.
        """
        override = next((self.routes[k] for k in route_keys if k in self.routes), None)
        window = self.active_outage(now_mono)
        return self._resolve(override, window.mode if window else None)

    def to_json(self, now_mono: float) -> dict[str, object]:
        window = self.active_outage(now_mono)
        return {
            "mode": self.mode,
            "effective_mode": window.mode if window else self.mode,
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "retry_after_s": self.retry_after_s,
            "latency_model": self.latency_model,
            "latency_ms": self.latency_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "cache_control": self.cache_control,
            "timeout_cap_s": self.timeout_cap_s,
            "seed": self.seed,
            "routes": {k: v.to_json() for k, v in self.routes.items()},
            "outage": [w.to_json(now_mono) for w in self.outage],
        }
