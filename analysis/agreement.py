"""A steady run against the TTL model: its own settings and achieved rate predicted (analysis.ttl_model), set
against what it measured (summary.json). What notebooks/02_ttl_model.ipynb prints and the tests hold to 5 points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analysis.ttl_model import Prediction, predict


@dataclass(frozen=True)
class RunInputs:
    """The model's inputs as a steady run realised them (summary.json + the proxy's TTL)."""

    keys: int
    zipf_s: float
    rate: float  # requests/s through the proxy, as achieved (answered / duration)
    window_s: float
    ttl_s: float
    requests: int  # requests the proxy answered


def run_inputs(summary: Mapping[str, Any], ttl_s: float) -> RunInputs:
    """Read a steady run's workload from its summary.json; the TTL comes from the proxy's configuration."""
    if summary.get("scenario") != "steady":
        raise ValueError(
            f"the model predicts steady runs, not {summary.get('scenario')!r} ones: measure one with "
            "`cachelab load steady` (a cachelab demo run is an outage run)"
        )
    settings = summary.get("settings") or {}
    if "keys" not in settings or "zipf_s" not in settings:
        raise ValueError("summary.json has no settings.keys / settings.zipf_s: not a steady-style run")
    answered = int(summary["answered"])
    duration = float(summary["duration_s"])
    if answered <= 0 or duration <= 0:
        raise ValueError("the run answered no requests through the proxy")
    return RunInputs(
        keys=int(settings["keys"]),
        zipf_s=float(settings["zipf_s"]),
        rate=answered / duration,
        window_s=duration,
        ttl_s=float(ttl_s),
        requests=answered,
    )


@dataclass(frozen=True)
class Agreement:
    """Predicted against measured, in percentage points (measured - predicted)."""

    inputs: RunInputs
    prediction: Prediction
    measured_hit_ratio: float  # share answered without an upstream request (stub counter, else headers)
    measured_from: str  # "stub" (offload_ratio) or "headers" (1 - expected_upstream_requests / answered)
    measured_xcache_hit_ratio: float | None  # summary.json hit_ratio
    difference_pp: float
    xcache_difference_pp: float | None

    def within(self, tolerance_pp: float) -> bool:
        return abs(self.difference_pp) <= tolerance_pp

    def lines(self, tolerance_pp: float = 5.0) -> list[str]:
        """A human-readable comparison (what the notebook prints)."""
        p, i = self.prediction, self.inputs
        verdict = "OK" if self.within(tolerance_pp) else "OUTSIDE"
        out = [
            f"run: {i.keys} keys, zipf s={i.zipf_s:g}, {i.rate:.1f} req/s for {i.window_s:.1f} s, "
            f"TTL {i.ttl_s:g} s, {i.requests} requests",
            f"hit ratio (no upstream request): predicted {p.hit_ratio:.1%}  "
            f"measured {self.measured_hit_ratio:.1%} ({self.measured_from})  "
            f"difference {self.difference_pp:+.1f} pp  "
            f"(tolerance {tolerance_pp:g} pp: {verdict})",
            f"  long-run (no cold start) prediction {p.stationary_hit_ratio:.1%}; "
            f"upstream requests predicted {p.upstream_requests:.0f}",
        ]
        if self.measured_xcache_hit_ratio is not None and self.xcache_difference_pp is not None:
            out.append(
                f"X-Cache hit ratio (304 revalidations count as HIT): predicted {p.xcache_hit_ratio:.1%}  "
                f"measured {self.measured_xcache_hit_ratio:.1%}  "
                f"difference {self.xcache_difference_pp:+.1f} pp"
            )
        return out


def measured_hit_ratio(summary: Mapping[str, Any]) -> tuple[float, str]:
    """Share of proxy requests answered without an upstream request: the stub's count, else the headers'."""
    offload = summary.get("offload_ratio")
    if offload is not None:
        return float(offload), "stub"
    answered = int(summary.get("answered") or 0)
    if answered <= 0:
        raise ValueError("the run answered no requests through the proxy")
    return 1.0 - float(summary["expected_upstream_requests"]) / answered, "headers"


def compare_run(summary: Mapping[str, Any], ttl_s: float) -> Agreement:
    """Predict a steady run from its own settings and achieved rate, and set the prediction against it."""
    inputs = run_inputs(summary, ttl_s)
    prediction = predict(inputs.keys, inputs.zipf_s, inputs.rate, inputs.ttl_s, inputs.window_s)
    measured, source = measured_hit_ratio(summary)
    raw_xcache = summary.get("hit_ratio")
    xcache = None if raw_xcache is None else float(raw_xcache)
    return Agreement(
        inputs=inputs,
        prediction=prediction,
        measured_hit_ratio=measured,
        measured_from=source,
        measured_xcache_hit_ratio=xcache,
        difference_pp=100.0 * (measured - prediction.hit_ratio),
        xcache_difference_pp=None if xcache is None else 100.0 * (xcache - prediction.xcache_hit_ratio),
    )
