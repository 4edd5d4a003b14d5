"""Run the notebooks headless with parameters (papermill), and keep them stripped in git (nbstripout).

    python -m analysis.notebooks run notebooks/01_results.ipynb -p 'results_dirs=["results/x"]' --out x.ipynb
    python -m analysis.notebooks strip notebooks/*.ipynb       # before committing
    python -m analysis.notebooks check notebooks/*.ipynb       # exit 1 when one has outputs or counts

A notebook's parameters are the assignments in its one code cell tagged `parameters`. `run` has papermill insert
the overrides in a cell tagged `injected-parameters` right after it and execute every cell in a fresh kernel (the
current interpreter's ipykernel) from the repository root, writing the executed copy (also when a cell fails).
A name the parameters cell does not assign is refused before anything runs: papermill only warns, and its own
inspection reads parameters line by line with a regular expression (a comment holding `=` or `;` hides a name), so
the names are read here with `ast`.

`strip` and `check` are nbstripout with this project's settings (STRIP_KEYS, the injected cell dropped): a stripped
executed copy is the committed notebook again.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cachelab.extras import MissingExtras, require

if TYPE_CHECKING:
    import papermill
    from nbformat import NotebookNode

# papermill, nbformat and nbstripout come with the `notebooks` extra: imported where they are used, so that without
# it `main` says what to install instead of a traceback.

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"  # papermill's tag of the cell it inserts
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 300.0
# What nbstripout removes besides outputs and execution counts: its command line's defaults, what papermill
# records of a run, and what the kernel adds to language_info (the committed notebooks keep only its name).
STRIP_KEYS: tuple[str, ...] = (
    "metadata.signature",
    "metadata.widgets",
    "metadata.papermill",
    "metadata.language_info.codemirror_mode",
    "metadata.language_info.file_extension",
    "metadata.language_info.mimetype",
    "metadata.language_info.nbconvert_exporter",
    "metadata.language_info.pygments_lexer",
    "metadata.language_info.version",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
    "cell.metadata.papermill",
)


class NotebookError(RuntimeError):
    """A notebook could not be read or a cell failed; the message says which and why."""


def read(path: Path) -> NotebookNode:
    if not path.is_file():
        raise NotebookError(f"no notebook at {path}")
    import nbformat  # noqa: PLC0415 - the notebooks extra

    try:
        nb: NotebookNode = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:  # nbformat raises several unrelated types for a broken file
        raise NotebookError(f"{path} is not a readable notebook: {exc}") from None
    return nb


def write(nb: NotebookNode, path: Path) -> None:
    import nbformat  # noqa: PLC0415 - the notebooks extra

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


def check_parameters(nb: NotebookNode, params: Mapping[str, Any]) -> None:
    """Refuse a name the parameters cell does not assign (papermill would only warn and run on)."""
    known = set(parameter_names(nb))
    unknown = sorted(set(params) - known)
    if unknown:
        raise NotebookError(
            f"unknown parameter(s) {', '.join(unknown)}; this notebook takes {', '.join(sorted(known))}"
        )


def execute(
    path: Path,
    params: Mapping[str, Any] | None = None,
    *,
    out: Path,
    timeout: float = DEFAULT_TIMEOUT,
    cwd: Path = REPO_ROOT,
) -> NotebookNode:
    """Execute a notebook with `params` (papermill); write the executed copy to `out` (also when a cell fails)."""
    import papermill  # noqa: PLC0415 - the notebooks extra

    check_parameters(read(path), params or {})
    out = out.resolve()  # papermill writes the copy while inside `cwd`
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        nb: NotebookNode = papermill.execute_notebook(
            str(path.resolve()),
            str(out),
            parameters=dict(params or {}),
            kernel_name="python3",
            cwd=str(cwd),
            execution_timeout=int(timeout),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as exc:
        raise NotebookError(cell_failure(path, exc, out)) from None
    return nb


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cell_failure(path: Path, exc: papermill.PapermillExecutionError, out: Path) -> str:
    """One plain line: which cell failed, and its exception (the coloured traceback stays in the executed copy)."""
    error = " ".join(_ANSI.sub("", f"{exc.ename}: {exc.evalue}").split())
    return f"{path}: cell {exc.cell_index} failed: {error} (traceback in the executed copy {out})"


def stripped(path: Path) -> NotebookNode:
    """The notebook as committed: read as papermill reads it (nbformat 4.5, a `tags` list and papermill's
    metadata on every cell), then nbstripout with STRIP_KEYS and the injected parameters cell dropped. So an
    executed copy, stripped, is its committed notebook again."""
    from nbstripout import strip_output  # noqa: PLC0415 - the notebooks extra
    from papermill.iorw import load_notebook_node  # noqa: PLC0415

    read(path)  # a missing or broken file is a NotebookError, not a traceback from papermill
    out: NotebookNode = strip_output(
        load_notebook_node(str(path)),
        keep_output=False,
        keep_count=False,
        keep_id=False,
        extra_keys=list(STRIP_KEYS),
        drop_tagged_cells=[INJECTED_TAG],
    )
    return out


def problems(path: Path) -> list[str]:
    """Why a notebook is not fit to commit (empty when it is)."""
    out: list[str] = []
    nb = read(path)
    if stripped(path) != nb:
        out.append("not stripped (outputs, execution counts, injected parameters or run metadata): run strip")
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
        require(["notebooks"])
    except MissingExtras as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "run":
            params = dict(parse_param(p) for p in args.param)
            out = args.out or REPO_ROOT / "results" / "notebooks" / args.notebook.name
            execute(args.notebook, params, out=out, timeout=args.timeout)
            print(f"executed {args.notebook} -> {out}")
            return 0
        if args.command == "strip":
            for path in args.notebooks:
                write(stripped(path), path)
                print(f"stripped {path}")
            return 0
        bad = 0
        for path in args.notebooks:
            for problem in problems(path):
                print(f"{path}: {problem}", file=sys.stderr)
                bad += 1
        return 1 if bad else 0
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
