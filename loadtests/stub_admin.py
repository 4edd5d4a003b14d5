"""The stub API's admin client (stub contract: /__admin/stats, /__admin/faults), as the Locust controller uses it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any


class StubAdminError(RuntimeError):
    """The stub's admin API could not be reached or refused a request."""


class StubAdmin:
    """The stub's admin API (stub contract: /__admin/stats, /__admin/faults)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.base = self.normalize(url)
        self.timeout = timeout

    @staticmethod
    def normalize(url: str) -> str:
        """The stub's base URL from "http://h:p", "http://h:p/" or "http://h:p/__admin[/]"."""
        base = url.strip().rstrip("/")
        base = base.removesuffix("/__admin")
        if not base.startswith(("http://", "https://")):
            raise StubAdminError(f"stub admin URL must start with http:// or https:// (got {url!r})")
        return base

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL scheme is checked in normalize()
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                if resp.headers.get("X-Cache"):  # the gateway, not the stub: its answers would be the proxy's
                    raise StubAdminError(f"{self.base} answered through the proxy (X-Cache): it is not the stub")
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise StubAdminError(f"{method} {self.base}{path} answered {exc.code}: {detail}") from None
        except (OSError, ValueError) as exc:
            raise StubAdminError(f"{method} {self.base}{path} failed: {exc}") from None

    def stats(self) -> dict[str, Any]:
        result = self._call("GET", "/__admin/stats")
        if not isinstance(result, dict) or not isinstance(result.get("requests"), int):
            raise StubAdminError(f"{self.base}/__admin/stats did not answer a stats object")
        return result

    def faults(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        result = self._call("POST", "/__admin/faults", patch)
        return result if isinstance(result, dict) else {}
