"""Run the notebooks headless with parameters (papermill-style), and keep them stripped in git.

    python -m analysis.notebooks run notebooks/01_results.ipynb -p 'results_dirs=["results/x"]' --out x.ipynb
    python -m analysis.notebooks strip notebooks/*.ipynb       # before committing
    python -m analysis.notebooks check notebooks/*.ipynb       # exit 1 when one has outputs or counts

A notebook's parameters are the assignments in its one code cell tagged `parameters`. `run` inserts a cell
tagged `injected-parameters` right after it with the overrides (as papermill does), executes every cell with
nbclient in a fresh kernel (the current interpreter's ipykernel) from the repository root, and writes the
executed copy.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat import NotebookNode

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 300.0


class NotebookError(RuntimeError):
    """A notebook could not be read or a cell failed; the message says which and why."""


def read(path: Path) -> NotebookNode:
    if not path.is_file():
        raise NotebookError(f"no notebook at {path}")
    try:
        nb: NotebookNode = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:  # nbformat raises several unrelated types for a broken file
        raise NotebookError(f"{path} is not a readable notebook: {exc}") from None
    return nb


def write(nb: NotebookNode, path: Path) -> None:
    nbformat.write(nb, str(path))  # type: ignore[no-untyped-call]


def _tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def parameters_index(nb: NotebookNode) -> int:
    """The index of the one code cell tagged `parameters`."""
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and PARAMETERS_TAG in _tags(c)]
    if len(found) != 1:
        raise NotebookError(f"a notebook needs one code cell tagged {PARAMETERS_TAG!r} (found {len(found)})")
    return found[0]


def parameter_names(nb: NotebookNode) -> list[str]:
    """The names the parameters cell assigns."""
    tree = ast.parse(nb.cells[parameters_index(nb)].source)
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def inject_parameters(nb: NotebookNode, params: Mapping[str, Any]) -> NotebookNode:
    """Insert the overrides after the parameters cell (an unknown name is an error, not a silent no-op)."""
    index = parameters_index(nb)
    known = set(parameter_names(nb))
    unknown = sorted(set(params) - known)
    if unknown:
        raise NotebookError(
            f"unknown parameter(s) {', '.join(unknown)}; this notebook takes {', '.join(sorted(known))}"
        )
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in _tags(c)]
    if params:
        lines = [f"{name} = {value!r}\n" for name, value in params.items()]
        source = "# Injected parameters\n" + "".join(lines)
        metadata = {"tags": [INJECTED_TAG]}
        cell = nbformat.v4.new_code_cell(source, metadata=metadata)  # type: ignore[no-untyped-call]
        nb.cells.insert(index + 1, cell)
    return nb


def execute(
    path: Path,
    params: Mapping[str, Any] | None = None,
    *,
    out: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cwd: Path = REPO_ROOT,
) -> NotebookNode:
    """Execute a notebook with `params`; write the executed copy to `out` (also when a cell fails)."""
    nb = inject_parameters(read(path), params or {})
    client = NotebookClient(
        nb,
        timeout=int(timeout),
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute(env={**os.environ, "MPLBACKEND": "Agg"})
    except CellExecutionError as exc:
        raise NotebookError(cell_failure(path, nb, exc, out)) from None
    finally:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            write(nb, out)
    return nb


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cell_failure(path: Path, nb: NotebookNode, exc: CellExecutionError, out: Path | None) -> str:
    """One plain line: which cell failed, and its exception (the coloured traceback stays in the executed copy)."""
    failed = next(
        (i for i, cell in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in cell.get("outputs", []))),
        None,
    )
    error = " ".join(_ANSI.sub("", f"{exc.ename}: {exc.evalue}").split())
    where = f"cell {failed}" if failed is not None else "a cell"
    copy = f" (traceback in the executed copy {out})" if out is not None else ""
    return f"{path}: {where} failed: {error}{copy}"


def stripped(nb: NotebookNode) -> NotebookNode:
    """The notebook without outputs, execution counts, injected cells and per-run metadata."""
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in _tags(c)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
    for key in ("widgets", "papermill"):
        nb.metadata.pop(key, None)
    language = nb.metadata.get("language_info")
    if language:  # the kernel fills in its version, codemirror mode, ...: keep only the name
        nb.metadata["language_info"] = {"name": language.get("name", "python")}
    return nb


def problems(nb: NotebookNode) -> list[str]:
    """Why a notebook is not fit to commit (empty when it is)."""
    out: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            out.append(f"cell {index} has outputs")
        if cell.get("execution_count") is not None:
            out.append(f"cell {index} has an execution count")
        if INJECTED_TAG in _tags(cell):
            out.append(f"cell {index} holds injected parameters")
    try:
        parameters_index(nb)
    except NotebookError as exc:
        out.append(str(exc))
    return out


def parse_param(text: str) -> tuple[str, Any]:
    """name=value, the value a Python literal (numbers, lists, dicts, True, None, ...), else a string."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise NotebookError(f"a parameter is name=value (got {text!r})")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main(argv: Sequence[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m analysis.notebooks", description=summary)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute a notebook with parameters and write the executed copy")
    run.add_argument("notebook", type=Path)
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="repeatable")
    run.add_argument("--out", type=Path, help="the executed copy (default results/notebooks/<name>)")
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per cell (default 300)")
    strip = sub.add_parser("strip", help="remove outputs and execution counts, in place")
    strip.add_argument("notebooks", type=Path, nargs="+")
    check = sub.add_parser("check", help="exit 1 when a notebook has outputs, counts or no parameters cell")
    check.add_argument("notebooks", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            params = dict(parse_param(p) for p in args.param)
            out = args.out or REPO_ROOT / "results" / "notebooks" / args.notebook.name
            execute(args.notebook, params, out=out, timeout=args.timeout)
            print(f"executed {args.notebook} -> {out}")
            return 0
        if args.command == "strip":
            for path in args.notebooks:
                write(stripped(read(path)), path)
                print(f"stripped {path}")
            return 0
        bad = 0
        for path in args.notebooks:
            for problem in problems(read(path)):
                print(f"{path}: {problem}", file=sys.stderr)
                bad += 1
        return 1 if bad else 0
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
