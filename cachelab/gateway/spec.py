"""What the gateway knows about the function it serves: `FunctionSpec`, resolved from the SAM template.

Free of SAM CLI imports (they cost ~0.6 s): `cachelab.gateway.template.load_function` builds a `FunctionSpec`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from cachelab.gateway.settings import GatewayError

_MATCHES_KEPT = 4096  # FunctionSpec.match results kept (then forgotten all at once)


class TemplateError(GatewayError, ValueError):
    """The template cannot drive the gateway; the message says why."""


@dataclass(frozen=True)
class Route:
    """One REST API resource of the function (e.g. `/` or `/{proxy+}`) and the methods it accepts."""

    resource: str
    methods: frozenset[str]
    pattern: re.Pattern[str] = field(compare=False)
    specificity: tuple[int, int, int] = field(compare=False)

    @classmethod
    def build(cls, resource: str, methods: Sequence[str]) -> Route:
        parts: list[str] = []
        literal = plain = greedy = 0
        segments = [s for s in resource.split("/") if s]
        for index, segment in enumerate(segments):
            match = re.fullmatch(r"\{([A-Za-z0-9._-]+)(\+?)\}", segment)
            if match is None:
                literal += 1
                parts.append(re.escape(segment))
            elif match.group(2):
                if index != len(segments) - 1:
                    raise TemplateError(f"greedy path variable must be last in {resource!r}")
                greedy += 1
                parts.append(f"(?P<{_group(match.group(1))}>.+)")
            else:
                plain += 1
                parts.append(f"(?P<{_group(match.group(1))}>[^/]+)")
        regex = "/" + "/".join(parts)
        # API Gateway prefers literal segments, then plain variables, then a greedy variable.
        return cls(resource, frozenset(m.upper() for m in methods), re.compile(regex), (-greedy, literal, plain))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {_ungroup(k): unquote(v) for k, v in found.groupdict().items()}  # path parameters arrive decoded


def _group(name: str) -> str:
    return "v_" + name.replace(".", "_2e_").replace("-", "_2d_")


def _ungroup(group: str) -> str:
    return group[2:].replace("_2e_", ".").replace("_2d_", "-")


@dataclass(frozen=True)
class FunctionSpec:
    """Everything the gateway needs to run one function locally, resolved from the template."""

    template: Path
    logical_id: str
    function_name: str
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    code_dir: Path  # the CodeUri
    task_root: Path  # LAMBDA_TASK_ROOT: the working directory and first import path of an environment
    environment: Mapping[str, str]  # the full Lambda environment of an execution environment
    routes: tuple[Route, ...]
    binary_media_types: tuple[str, ...]
    stage: str
    reserved_concurrency: int | None
    parameters: Mapping[str, str]  # the overrides applied (template defaults are not listed)
    overridden_from_env: tuple[str, ...]  # the `pass_env` names whose value came from the gateway's environment

    # (method, path) -> what `match` found: clients ask for the same paths again and again. Never mutated once in.
    _matches: dict[tuple[str, str], tuple[Route, dict[str, str]] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving `method path` and its path parameters, or None (API Gateway answers 403). The
        parameters are shared by every request for the same path: read them, do not change them."""
        key = (method, path)
        matches = self._matches
        if key in matches:
            return matches[key]
        found = None
        for route in self.routes:
            params = route.match(path)
            if params is not None and method in route.methods:
                found = (route, params)
                break
        if len(matches) >= _MATCHES_KEPT:
            matches.clear()
        matches[key] = found
        return found


_REFERENCE = re.compile(r"\$\{[^}]*\}")


def unresolved_variables(environment: Mapping[str, str]) -> dict[str, str]:
    """Variables whose value still holds a `${...}` reference: an attribute of a resource that exists only in a
    deployed stack (an ElastiCache endpoint, ...), which SAM CLI leaves as it is when it resolves locally."""
    return {name: value for name, value in environment.items() if _REFERENCE.search(value)}


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """`["Name=Value", ...]` -> dict; a clear error for anything else."""
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise TemplateError(f"--param expects Name=Value, got {item!r}")
        params[name.strip()] = value
    return params


def runtime_mismatch(runtime: str) -> str | None:
    """A warning when the template's Python runtime differs from the interpreter that runs the environments."""
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return None if runtime == here else f"template runtime {runtime} runs on local {here}"
