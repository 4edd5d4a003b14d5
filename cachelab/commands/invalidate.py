"""`cachelab invalidate`: placeholder until its issue lands."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("invalidate", help="(not implemented yet)")
    parser.set_defaults(func=lambda _args: 1)
