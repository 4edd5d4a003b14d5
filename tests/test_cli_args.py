"""Options whose values are another program's arguments: `--stub-arg --latency-ms --stub-arg 50` must parse."""

from __future__ import annotations

import argparse

import pytest

from cachelab.cli import build_parser, join_pass_through


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(join_pass_through(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--stub-arg", "--latency-ms", "--stub-arg", "50", "--no-locust"],
        ["up", "--stub-arg=--latency-ms", "--stub-arg=50", "--no-locust"],
        ["up", "--no-locust", "--stub-arg", "--latency-ms", "--stub-arg=50"],
    ],
)
def test_stub_args_that_look_like_options(argv: list[str]) -> None:
    args = parse(*argv)
    assert args.stub_arg == ["--latency-ms", "50"]
    assert args.no_locust is True


def test_demo_takes_stub_args_the_same_way() -> None:
    args = parse("demo", "--stub-arg", "--mode", "--stub-arg", "error", "--duration", "30s")
    assert args.stub_arg == ["--mode", "error"]
    assert args.duration == "30s"


def test_locust_args_too() -> None:
    args = parse("load", "stampede", "--host", "http://h", "--locust-arg", "--expiry-gap", "--locust-arg", "0.3")
    assert args.locust_arg == ["--expiry-gap", "0.3"]


def test_only_the_pass_through_options_are_joined() -> None:
    assert join_pass_through(["up", "--param", "A=1", "--stub-arg", "-x", "--", "--stub-arg", "y"]) == [
        "up",
        "--param",
        "A=1",
        "--stub-arg=-x",
        "--",
        "--stub-arg",
        "y",
    ]
    assert join_pass_through(["up", "--stub-arg"]) == ["up", "--stub-arg"]  # argparse reports the missing value
