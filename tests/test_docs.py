"""The documentation (README.md and docs/*.md) against the code it describes (issue 16):

- every relative link points to a file that exists, and every `#anchor` to a heading of that page;
- every `cachelab` subcommand, every long option its `--help` prints and every choice of its positional arguments
  is documented, the options in the page a user of that command reads;
- every environment variable the proxy reads (proxy.config.ENVIRONMENT_NAMES) is in docs/configuration.md;
- docs/architecture.md lists the layers exactly as tests/test_layers.py declares them;
- the README links every page of docs/.

The parser is built in-process (cachelab.cli.build_parser): the command modules import nothing optional at the top.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachelab.cli import build_parser
from proxy.config import ENVIRONMENT_NAMES
from tests.test_layers import LAYERS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES: tuple[Path, ...] = (README, *sorted(DOCS.glob("*.md")))

# The page a user of each `cachelab` command reads for its options. A new command needs a page here.
COMMAND_PAGES: dict[str, str] = {
    "invoke": "sandbox.md",
    "stub": "stub-api.md",
    "gateway": "sandbox.md",
    "up": "sandbox.md",
    "demo": "sandbox.md",
    "load": "experiments.md",
    "deploy": "deploy.md",
    "invalidate": "deploy.md",
    "whatif": "experiments.md",
}

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors on its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor in a Markdown text, with GitHub's -1, -2, ... for repeated headings."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(text):
        match = _HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def link_targets(text: str) -> list[str]:
    """The targets of the Markdown links (and images) outside code."""
    return [m.group(1) for line in prose_lines(text) for m in _LINK.finditer(_INLINE_CODE.sub("", line))]


def broken_links(page: Path, text: str) -> list[str]:
    """What is wrong with each relative link of `page` (whose content is `text`)."""
    problems: list[str] = []
    for target in link_targets(text):
        if _EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if path_part and not linked.exists():
            problems.append(f"{target}: no such file {linked}")
            continue
        if anchor and linked.suffix == ".md":
            linked_text = text if linked == page else linked.read_text(encoding="utf-8")
            if anchor not in anchors(linked_text):
                problems.append(f"{target}: no heading with the anchor #{anchor} in {linked.name}")
    return problems


def mentions(text: str, word: str) -> bool:
    """Whether `word` (an option, a variable) occurs in `text` as a whole word: `--ttl` is not in `--ttls`."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def long_options(parser: argparse.ArgumentParser) -> list[str]:
    """The long options `--help` prints (suppressed ones are hidden there too), but --help itself."""
    return sorted(
        {
            option
            for action in parser._actions
            if action.help != argparse.SUPPRESS
            for option in action.option_strings
            if option.startswith("--") and option != "--help"
        }
    )


def positional_choices(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        str(choice)
        for action in parser._actions
        if not action.option_strings and action.choices is not None and not isinstance(action.choices, dict)
        for choice in action.choices
    )


def undocumented(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """The options and positional choices of one subcommand's parser that `text` never names."""
    missing = [option for option in long_options(parser) if not mentions(text, option)]
    return missing + [f"`{choice}`" for choice in positional_choices(parser) if f"`{choice}`" not in text]


def layer_rows(text: str) -> list[tuple[str, ...]]:
    """The module column of the table under "## Layers", in order: (`a`, `b`) per row."""
    rows: list[tuple[str, ...]] = []
    inside = False
    for line in prose_lines(text):
        if line.startswith("## "):
            inside = line.strip() == "## Layers"
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if inside and line.startswith("|") and len(cells) >= 2 and cells[0].isdigit():
            rows.append(tuple(re.findall(r"`([^`]+)`", cells[1])))
    return rows


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _all_docs() -> str:
    return "\n".join(_read(page) for page in PAGES)


_PARSER = build_parser()
_COMMANDS = subcommands(_PARSER)


# -- the documentation --------------------------------------------------------------------------------------------
def test_there_are_pages() -> None:
    assert README.is_file()
    assert len(PAGES) > 1


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page, _read(page)) == []


def test_the_readme_links_every_page() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in link_targets(_read(README))}
    assert [page.name for page in PAGES[1:] if page.resolve() not in linked] == []


def test_every_command_has_a_page() -> None:
    assert set(COMMAND_PAGES) == set(_COMMANDS)
    assert all((DOCS / page).is_file() for page in COMMAND_PAGES.values())


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_every_command_is_documented(command: str) -> None:
    assert mentions(_all_docs(), f"cachelab {command}")


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_every_option_is_documented_in_its_page(command: str) -> None:
    page = DOCS / COMMAND_PAGES[command]
    assert undocumented(_COMMANDS[command], _read(page)) == [], f"`cachelab {command}` options missing in {page.name}"


@pytest.mark.parametrize("name", ENVIRONMENT_NAMES)
def test_every_proxy_variable_is_in_the_configuration_page(name: str) -> None:
    assert mentions(_read(DOCS / "configuration.md"), name)


def test_the_architecture_page_lists_the_layers_as_declared() -> None:
    assert layer_rows(_read(DOCS / "architecture.md")) == list(LAYERS)


# -- the checkers find what is missing ----------------------------------------------------------------------------
def test_slugs_follow_github() -> None:
    assert (
        slug("`make demo` / `cachelab demo`: the guided experiment") == "make-demo--cachelab-demo-the-guided-experiment"
    )
    assert slug('summary.json (`"schema": "cachelab.load.summary/1"`)') == "summaryjson-schema-cachelabloadsummary1"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_the_link_checker_sees_broken_links(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n", encoding="utf-8")
    page = tmp_path / "page.md"
    text = (
        "# Title\n[ok](other.md) [ok](other.md#other-page) [ok](#title) [web](https://example.com/x)\n"
        "[gone](missing.md) [bad anchor](other.md#nowhere) [bad here](#nothing)\n"
        "`[code](ignored.md)`\n```\n[fenced](ignored.md)\n```\n"
    )
    problems = broken_links(page, text)
    assert len(problems) == 3
    assert [p.split(":")[0] for p in problems] == ["missing.md", "other.md#nowhere", "#nothing"]


def test_the_option_checker_sees_a_missing_option() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["steady", "outage"])
    parser.add_argument("--ttl")
    parser.add_argument("--ttls")
    parser.add_argument("--hidden", help=argparse.SUPPRESS)
    assert undocumented(parser, "`steady`, `outage`: --ttl and --ttls") == []
    assert undocumented(parser, "`steady`: --ttls") == ["--ttl", "`outage`"]


def test_the_layer_table_is_read_in_order() -> None:
    text = (
        "## Layers\n\n| layer | modules | for |\n|---|---|---|\n| 1 | `a.b`, `c` | x |\n| 2 | `d` | y |\n"
        "## Next\n| 3 | `e` | z |\n"
    )
    assert layer_rows(text) == [("a.b", "c"), ("d",)]
