"""Partial installs: every command names the extra it lacks (`pip install 'cachelab[...]'`) and exits 2.

Each case runs the real command in a fresh interpreter in which the optional packages are hidden
(`sys.modules[name] = None`: both `import name` and `importlib.util.find_spec(name)` then see no such module), as in
a venv made with `pip install -e .` and no extras.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cachelab import processes
from cachelab.cli import COMMANDS
from cachelab.extras import EXTRAS, MissingExtras, require

# Runs `module` as __main__ with argv, after hiding the comma-separated top-level modules in argv[1].
_HIDING_RUNNER = """
import runpy, sys
for name in sys.argv[1].split(","):
    if name:
        sys.modules[name] = None
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
EVERY_EXTRA = sorted({module for modules in EXTRAS.values() for module in modules} | {"botocore", "gevent"})


def run_hidden(
    hidden: list[str], *args: str, module: str = "cachelab", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _HIDING_RUNNER, ",".join(hidden), module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def assert_names_extra(result: subprocess.CompletedProcess[str], command: str, extras: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, nothing started before it
    assert lines[0].startswith(f"{command}: error: ")
    assert f"pip install 'cachelab[{extras}]'" in lines[0]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_works_with_no_extra_installed(command: str | None) -> None:
    result = run_hidden(EVERY_EXTRA, *([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: cachelab" in result.stdout


@pytest.mark.parametrize(
    ("hidden", "args", "extras"),
    [
        (["aiohttp"], ["stub", "--port", "0"], "stub"),
        (["samcli"], ["gateway", "--port", "1"], "sam"),
        (["httptools"], ["gateway", "--port", "1"], "sam"),
        (["aiohttp", "samcli"], ["up", "--no-locust"], "stub,sam"),
        (["locust"], ["up"], "load"),
        (["locust", "matplotlib"], ["demo"], "load"),
        (["locust"], ["load", "steady", "--host", "http://127.0.0.1:1"], "load"),
        (["boto3"], ["load", "steady", "--stack", "cachelab"], "sam"),
        (["boto3", "botocore"], ["invalidate", "/items/1", "--target", "aws"], "sam"),
        (["samcli", "boto3"], ["deploy", "--target", "localstack", "--dry-run"], "sam"),
    ],
)
def test_a_command_without_its_extra_names_it_and_exits_2(hidden: list[str], args: list[str], extras: str) -> None:
    assert_names_extra(run_hidden(hidden, *args), f"cachelab {args[0]}", extras)


def test_without_redis_server_the_embedded_redis_is_an_extra_too() -> None:
    # No redis-server on PATH: the stack would fall back to fakeredis, which is an extra of its own.
    result = run_hidden(["fakeredis", "lupa"], "up", "--no-locust", env={"PATH": "/nonexistent"})
    assert_names_extra(result, "cachelab up", "fakeredis")
    assert "apt-get install redis-server" in result.stderr


def test_the_stub_and_gateway_entry_points_check_too() -> None:
    stub = run_hidden(["aiohttp"], "--port", "0", module="stub_api")
    assert stub.returncode == 2
    assert "Traceback" not in stub.stderr
    assert "pip install 'cachelab[stub]'" in stub.stderr
    port = processes.free_port()
    gateway = run_hidden(["samcli"], "--port", str(port), module="cachelab.gateway")
    assert_names_extra(gateway, "cachelab gateway", "sam")


def test_the_notebook_runner_checks_too() -> None:
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "01_results.ipynb"
    result = run_hidden(["papermill"], "check", str(notebook), module="analysis.notebooks")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert "pip install 'cachelab[notebooks]'" in result.stderr


def test_commands_of_the_core_install_need_no_extra() -> None:
    # invoke runs the proxy in-process: the core install (redis, urllib3) is all it needs.
    result = run_hidden(EVERY_EXTRA, "invoke", "/items/1", env={"UPSTREAM_URL": "not a url"})
    assert result.returncode == 2
    assert "UPSTREAM_URL" in result.stderr
    assert "cachelab[" not in result.stderr


def test_require_names_every_missing_extra_once() -> None:
    require(["stub"])  # installed in the dev venv: no error
    hidden = dict.fromkeys(("aiohttp", "samcli"))
    saved = {name: sys.modules.get(name) for name in hidden}
    try:
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        with pytest.raises(MissingExtras, match=r"pip install 'cachelab\[stub,sam\]'"):
            require(["stub", "sam", "stub", "load"])
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
