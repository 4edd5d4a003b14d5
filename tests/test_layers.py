"""Arrows point down: a module imports from its own layer or the layers below it, never from one above, and the
checked packages have no import cycle (issue 16). Read from the source with `ast`, so lazy imports (inside a
function, or `importlib.import_module("...")` with a literal name) count as much as those at the top.

Every package of the project is checked (CHECKED = PROJECT); a new module or package needs its place in LAYERS, and
docs/architecture.md shows the same table (tests/test_docs.py holds the two equal). The tests and docker/'s scripts
stand above every layer: they may import anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("cachelab", "proxy", "stub_api", "loadtests", "analysis", "whatif", "bench")

# Highest first. Each entry is a module or a package (with everything under it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cachelab.__main__", "cachelab.cli", "cachelab.commands"),  # the command line
    ("bench",),  # benchmarks drive the stack and the products
    ("cachelab.stack", "cachelab.chaos", "cachelab.events", "cachelab.fakeredis_server"),  # what the commands run
    ("loadtests", "analysis", "whatif"),  # load generation and recording, models and charts, the what-if model
    ("proxy", "stub_api"),  # the products: the Lambda and the external API it caches
    ("cachelab.gateway",),  # a local API Gateway that runs any SAM function: it knows none of them
    ("cachelab.processes", "cachelab.extras"),  # process, port and install helpers
)
CHECKED: tuple[str, ...] = PROJECT  # the whole tree


def _inside(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int | None:
    """The index in LAYERS (0 is the top) of the longest declared prefix of `module`, None if undeclared."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if _inside(module, prefix) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, module: str, *, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in `source`, relative ones resolved against `module`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from cachelab.gateway import server`: the module server, else the package
                yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def project_module(name: str) -> str | None:
    """`name` (or, for `package.attribute`, its package) if it is a module of this project, else None."""
    if name.split(".", maxsplit=1)[0] not in PROJECT:
        return None
    candidate = name
    while candidate:
        path = ROOT / candidate.replace(".", "/")
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return candidate
        candidate = candidate.rpartition(".")[0]
    return None


def violations(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """What `module` (with this `source`) imports against the layers."""
    own = layer_of(module)
    if own is None:
        return [f"{module} is in no layer: declare it in LAYERS"]
    found: list[str] = []
    seen: set[tuple[int, str]] = set()
    for line, name in imports(source, module, is_package=is_package):
        target = project_module(name)
        if target is None or _inside(target, module) or (line, target) in seen:
            continue
        seen.add((line, target))
        layer = layer_of(target)
        if layer is None:
            found.append(f"{module}:{line} imports {target}, which is in no layer: declare it in LAYERS")
        elif layer < own:
            found.append(f"{module}:{line} imports {target}, a higher layer ({', '.join(LAYERS[layer])})")
    return found


def checked_files() -> list[Path]:
    """Every module of CHECKED, but empty package markers (an empty `__init__.py` imports nothing)."""
    files: list[Path] = []
    for package in CHECKED:
        path = ROOT / package.replace(".", "/")
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")])
    return [file for file in files if file.name != "__init__.py" or file.read_text(encoding="utf-8").strip()]


def test_the_checked_packages_exist() -> None:
    assert checked_files()
    assert all(path.is_file() for path in checked_files())


@pytest.mark.parametrize("path", checked_files(), ids=module_name)
def test_no_import_from_a_higher_layer(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert violations(module_name(path), source, is_package=path.name == "__init__.py") == []


def test_no_import_cycle_in_the_checked_packages() -> None:
    graph: dict[str, set[str]] = {}
    for path in checked_files():
        module = module_name(path)
        source = path.read_text(encoding="utf-8")
        targets = (project_module(name) for _, name in imports(source, module, is_package=path.name == "__init__.py"))
        graph[module] = {t for t in targets if t is not None and t != module and any(_inside(t, c) for c in CHECKED)}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:  # back on the current path
                pytest.fail(f"import cycle: {' -> '.join([*path[path.index(nxt) :], nxt])}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


@pytest.mark.parametrize(
    "source",
    [
        "from cachelab.cli import CliError",
        "from proxy.config import ENVIRONMENT_NAMES",
        "import cachelab.commands.load",
        "def f():\n    from stub_api import server\n",
        "import importlib\nimportlib.import_module('cachelab.commands.deploy')",
        "from ..commands import deploy",
    ],
)
def test_the_checker_sees_an_arrow_pointing_up(source: str) -> None:
    assert violations("cachelab.gateway.server", source)


def test_the_checker_lets_arrows_point_down() -> None:
    source = (
        "import json\nfrom cachelab.gateway import wire\nfrom cachelab.processes import LOOPBACK\nfrom . import spec\n"
    )
    assert violations("cachelab.gateway.server", source) == []
    assert violations("cachelab.commands.gateway", "from cachelab.gateway.cli import run\nimport proxy.config") == []
