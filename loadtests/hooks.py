"""`on`: a typed way to register a listener on one of Locust's event hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Listener = TypeVar("Listener", bound=Callable[..., Any])


def on(hook: Any) -> Callable[[Listener], Listener]:
    """Register a typed listener on a Locust event hook (its add_listener is untyped)."""

    def register(listener: Listener) -> Listener:
        hook.add_listener(listener)
        return listener

    return register
