"""Reading compose.yaml, Dockerfiles and .dockerignore the way Docker does, without a Docker engine.

- `load_compose` interpolates `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}` and `$$` as Compose
  does (in values, not keys) and records every variable referenced, with or without a default.
- `parse_dockerfile` joins continuation lines and drops comments: one `Instruction` per Dockerfile instruction.
- `DockerIgnore` matches paths like Docker's pattern matcher: the last matching pattern wins, `!` re-includes,
  `**` spans directories, and a pattern that matches a parent directory matches everything below it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
SCHEMA = Path(__file__).resolve().parent / "schema" / "compose-spec.json"
DOCKER_DIR = REPO / "docker"
SKIPPED_DIRS = frozenset({".git", ".venv", "node_modules", ".aws-sam", "results", "__pycache__"})

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>))"
)


class InterpolationError(ValueError):
    """A `$` expression Compose would reject, or a required variable that is not set."""


@dataclass(frozen=True)
class Reference:
    name: str
    default: str | None  # None: no default (`${VAR}`, `$VAR`, `${VAR:?message}`)


@dataclass
class Interpolator:
    env: Mapping[str, str]
    references: list[Reference] = field(default_factory=list)

    def string(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group("escaped"):
                return "$"
            if match.group("invalid") is not None:
                raise InterpolationError(f"invalid interpolation in {text!r}: a lone '$' (write $$)")
            name = match.group("braced") or match.group("bare")
            op, arg = match.group("op"), match.group("arg") or ""
            value = self.env.get(name)
            unset_or_empty = value is None or (value == "" and op is not None and op.startswith(":"))
            if op in {"-", ":-"}:
                self.references.append(Reference(name, arg))
                return arg if (value is None if op == "-" else unset_or_empty) else str(value)
            self.references.append(Reference(name, None))
            if op in {"?", ":?"}:
                if value is None if op == "?" else unset_or_empty:
                    raise InterpolationError(f"required variable {name} is not set: {arg}")
                return str(value)
            if op in {"+", ":+"}:
                return "" if (value is None if op == "+" else unset_or_empty) else arg
            return value or ""

        return _VARIABLE.sub(replace, text)

    def tree(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.string(node)
        if isinstance(node, list):
            return [self.tree(item) for item in node]
        if isinstance(node, dict):
            return {key: self.tree(value) for key, value in node.items()}
        return node


@dataclass
class Compose:
    raw: dict[str, Any]  # as written (YAML anchors and merge keys resolved)
    config: dict[str, Any]  # interpolated
    references: list[Reference]

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = self.config["services"]
        return services

    def service(self, name: str) -> dict[str, Any]:
        return self.services[name]

    def environment(self, name: str) -> dict[str, str]:
        """A service's environment as a dict (list form `K=V` accepted); values as strings."""
        env = self.service(name).get("environment") or {}
        if isinstance(env, list):
            return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {str(key): "" if value is None else str(value) for key, value in env.items()}


def load_compose(env: Mapping[str, str] | None = None, path: Path = COMPOSE_FILE) -> Compose:
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not a mapping")
    interpolator = Interpolator(env or {})
    config = interpolator.tree(raw)
    return Compose(raw, config, interpolator.references)


# ---------------------------------------------------------------------------------------------- ports, URLs
@dataclass(frozen=True)
class PublishedPort:
    host_ip: str | None
    published: int | None
    target: int
    protocol: str = "tcp"


def published_ports(service: Mapping[str, Any]) -> list[PublishedPort]:
    """The short (`[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]`) and long forms of a service's `ports`."""
    ports: list[PublishedPort] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            ports.append(
                PublishedPort(
                    entry.get("host_ip"),
                    int(published) if published is not None else None,
                    int(entry["target"]),
                    entry.get("protocol", "tcp"),
                )
            )
            continue
        text, _, protocol = str(entry).partition("/")
        parts = text.rsplit(":", 2)
        target = int(parts[-1])
        published_text = parts[-2] if len(parts) >= 2 else ""
        host_ip = parts[0] if len(parts) == 3 else None
        ports.append(PublishedPort(host_ip, int(published_text) if published_text else None, target, protocol or "tcp"))
    return ports


# ---------------------------------------------------------------------------------------------- Dockerfiles
@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str
    line: int

    def words(self) -> list[str]:
        """The arguments as a list: JSON (exec) form when it is one, else shell-split."""
        text = self.args.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                pass
            else:
                if isinstance(value, list):
                    return [str(item) for item in value]
        return shlex.split(text, comments=False)

    @property
    def exec_form(self) -> bool:
        try:
            return isinstance(json.loads(self.args.strip()), list)
        except json.JSONDecodeError:
            return False


def parse_dockerfile(path: Path) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped, as Docker does
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        text = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = text.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    if pending:
        raise ValueError(f"{path}: the last instruction ends with a line continuation")
    return instructions


@dataclass(frozen=True)
class CopySpec:
    instruction: Instruction
    sources: list[str]
    destination: str
    from_stage: str | None
    chown: str | None


def copy_specs(instructions: list[Instruction]) -> list[CopySpec]:
    specs: list[CopySpec] = []
    for instruction in instructions:
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        words = instruction.words()
        flags = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        if len(words) < 2:
            raise ValueError(f"line {instruction.line}: {instruction.keyword} needs a source and a destination")
        specs.append(CopySpec(instruction, words[:-1], words[-1], flags.get("from"), flags.get("chown")))
    return specs


def repo_dockerfiles() -> list[Path]:
    """Every Dockerfile of the repository (outside virtualenvs, caches and build output)."""
    found: list[Path] = []

    def visit(folder: Path) -> Iterator[Path]:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                if entry.name not in SKIPPED_DIRS and not entry.name.startswith("."):
                    yield from visit(entry)
            elif entry.name == "Dockerfile" or entry.name.startswith("Dockerfile."):
                yield entry

    found.extend(visit(REPO))
    return found


# ---------------------------------------------------------------------------------------------- .dockerignore
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class DockerIgnore:
    patterns: tuple[tuple[bool, re.Pattern[str], str], ...]  # (exclude, regex, source text)

    @classmethod
    def read(cls, context: Path) -> DockerIgnore:
        path = context / ".dockerignore"
        lines = path.read_text().splitlines() if path.is_file() else []
        patterns: list[tuple[bool, re.Pattern[str], str]] = []
        for line in lines:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            exclude = not text.startswith("!")
            body = text.lstrip("!").strip().strip("/")
            body = re.sub(r"/+", "/", body).removeprefix("./")
            patterns.append((exclude, _pattern_regex(body), text))
        return cls(tuple(patterns))

    def excluded(self, relative: str) -> bool:
        """Whether `relative` (a posix path in the build context) is left out of the context."""
        path = relative.strip("/")
        candidates = [path]
        parts = path.split("/")
        candidates += ["/".join(parts[:n]) for n in range(1, len(parts))]
        verdict = False
        for exclude, regex, _ in self.patterns:
            if any(regex.match(candidate) for candidate in candidates):
                verdict = exclude
        return verdict


def context_files(context: Path, source: str) -> list[Path]:
    """The files a COPY source names in `context` (a file, or every file under a directory; globs expanded)."""
    matches = sorted(context.glob(source.strip("/"))) if any(c in source for c in "*?[") else [context / source]
    files: list[Path] = []
    for match in matches:
        if match.is_dir():
            files += [p for p in sorted(match.rglob("*")) if p.is_file() and not (SKIPPED_DIRS & set(p.parts))]
        elif match.exists():
            files.append(match)
    return files


# ---------------------------------------------------------------------------------------------- the template
NO_VALUE = object()  # AWS::NoValue: the key is left out


@dataclass
class TemplateResolver:
    """Evaluates the intrinsics the template's function environment uses (Ref, Fn::If and its conditions) for
    one set of parameter values. Branches not taken are never evaluated, so resource attributes of other modes
    may appear there."""

    template: Mapping[str, Any]
    parameters: Mapping[str, str]

    def parameter(self, name: str) -> str:
        declared = self.template["Parameters"]
        if name not in declared:
            raise KeyError(f"{name} is not a parameter of the template")
        if name in self.parameters:
            return str(self.parameters[name])
        return str(declared[name].get("Default", ""))

    def condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def _truth(self, node: Any) -> bool:
        (key, value), *rest = node.items()
        assert not rest, node
        if key == "Fn::Equals":
            left, right = (self.value(item) for item in value)
            return bool(left == right)
        if key == "Fn::Not":
            return not self._truth(value[0])
        if key == "Fn::And":
            return all(self._truth(item) for item in value)
        if key == "Fn::Or":
            return any(self._truth(item) for item in value)
        if key == "Condition":
            return self.condition(value)
        raise ValueError(f"unsupported condition {key}")

    def value(self, node: Any) -> Any:
        if isinstance(node, Mapping) and len(node) == 1:
            (key, value), *_ = node.items()
            if key == "Ref":
                return NO_VALUE if value == "AWS::NoValue" else self.parameter(value)
            if key == "Fn::If":
                condition, when_true, when_false = value
                return self.value(when_true if self.condition(condition) else when_false)
            if key == "Condition":
                return self.condition(value)
            if key.startswith("Fn::"):
                raise ValueError(f"{key} cannot be evaluated without a deployed stack: {node}")
        if isinstance(node, (str, int, float, bool)):
            return str(node).lower() if isinstance(node, bool) else str(node)
        raise ValueError(f"cannot evaluate {node!r}")

    def function_environment(self) -> dict[str, str]:
        """The Globals function environment as the deployed functions get it."""
        variables = self.template["Globals"]["Function"]["Environment"]["Variables"]
        resolved = {name: self.value(node) for name, node in variables.items()}
        return {name: value for name, value in resolved.items() if value is not NO_VALUE}


def load_template(path: Path) -> dict[str, Any]:
    """The SAM template as the SAM CLI reads it (short-form intrinsics become their long form)."""
    from samcli.yamlhelper import yaml_parse

    data: dict[str, Any] = yaml_parse(path.read_text())
    return data


def find_tool(name: str) -> str | None:
    """An executable on PATH or next to this Python (a tool installed into the venv by a wheel)."""
    import shutil
    import sys

    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
