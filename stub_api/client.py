"""A client for the stub's admin API (`/__admin/...`, the contract stub_api/server.py serves): the one every tool,
benchmark and test harness of this repository uses to steer a stub.

Standard library only (urllib), a timeout on every call, JSON in and out. Every failure raises `StubAdminError`,
whose `kind` says what went wrong: no HTTP answer at all ("unreachable"), an HTTP error status ("refused", with
`status`), or an answer that is not the stub's ("not-stub": it came through the proxy, or is not the JSON the stub
sends), besides "bad-url" for a URL that is not http(s). Answers that pass through a cache (X-Cache or
Cache-Status) are refused: through the gateway the proxy would forward, and count, the admin calls as upstream
traffic.

    admin = StubAdmin("http://127.0.0.1:8081")
    admin.faults({"mode": "error"})       # POST /__admin/faults: merge a fault patch, the new fault state
    admin.stats()["requests"]             # GET /__admin/stats
    admin.reset()                         # POST /__admin/reset: start state, zeroed stats
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Literal

ADMIN_PREFIX = "/__admin"
DEFAULT_TIMEOUT = 5.0
_DETAIL_CHARS = 300  # of an error answer's body, in the message

Kind = Literal["bad-url", "unreachable", "refused", "not-stub"]


class StubAdminError(RuntimeError):
    """A call to the stub's admin API failed. `kind`: "bad-url" (not an http(s) URL), "unreachable" (no HTTP
    answer; `status` is None), "refused" (an HTTP error `status`, `detail` its body), "not-stub" (an answer, but not
    the stub's: through a cache, `detail` then the cache's header as "X-Cache: HIT", or not its JSON). The message
    names the call and says why."""

    def __init__(self, message: str, *, kind: Kind, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.status = status
        self.detail = detail


class StubAdmin:
    """One stub's admin API at `url` ("http://h:p", with or without a trailing "/" or "/__admin")."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.base = self.normalize(url)
        self.timeout = timeout

    @staticmethod
    def normalize(url: str) -> str:
        """The stub's base URL from "http://h:p", "http://h:p/" or "http://h:p/__admin[/]"."""
        base = url.strip().rstrip("/").removesuffix(ADMIN_PREFIX)
        if not base.startswith(("http://", "https://")):
            raise StubAdminError(f"stub admin URL must start with http:// or https:// (got {url!r})", kind="bad-url")
        return base

    @property
    def page_url(self) -> str:
        """The control page (a browser's view of this API)."""
        return f"{self.base}{ADMIN_PREFIX}/"

    @property
    def health_url(self) -> str:
        return f"{self.base}{ADMIN_PREFIX}/health"

    # -- the API ---------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """GET /__admin/health: {"status": "ok"} once the stub serves."""
        return self._object("GET", "/health")

    def stats(self) -> dict[str, Any]:
        """GET /__admin/stats: requests, by_path, by_status, in_flight, max_in_flight, since."""
        result = self._object("GET", "/stats")
        if not isinstance(result.get("requests"), int):
            raise self._not_stub("GET", "/stats", "did not answer the stub's stats object")
        return result

    def faults(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """POST /__admin/faults: merge `patch` into the fault state; the new state."""
        return self._object("POST", "/faults", patch)

    def fault_state(self) -> dict[str, Any]:
        """GET /__admin/faults: the current fault state (every field of a patch, and `effective_mode`)."""
        return self._object("GET", "/faults")

    def reset(self) -> dict[str, Any]:
        """POST /__admin/reset: the start state's faults, version-1 items, zeroed stats; {status, faults, stats}."""
        return self._object("POST", "/reset")

    def item(self, item_id: int) -> dict[str, Any]:
        """GET /__admin/items/{id}: the item as it is now (not counted as upstream traffic)."""
        return self._object("GET", f"/items/{item_id}")

    def bump_item(self, item_id: int) -> dict[str, Any]:
        """POST /__admin/items/{id}: a new version of the item; the item."""
        return self._object("POST", f"/items/{item_id}", {})

    # -- transport -------------------------------------------------------------------------------------------
    def _object(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        result = self._call(method, path, body)
        if not isinstance(result, dict):
            raise self._not_stub(method, path, "did not answer a JSON object")
        return result

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        url = f"{self.base}{ADMIN_PREFIX}{path}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"} | ({} if data is None else {"Content-Type": "application/json"})
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                through = resp.headers.get("X-Cache") or resp.headers.get("Cache-Status")
                if through:
                    cache = f"X-Cache: {resp.headers.get('X-Cache')}"
                    raise self._not_stub(
                        method, path, f"answered through a cache ({cache}): that is the gateway, not the stub; give "
                        "the stub's own URL", status=resp.status, detail=cache,
                    )  # fmt: skip
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                detail = exc.read(_DETAIL_CHARS).decode("utf-8", "replace")
            raise StubAdminError(
                f"{method} {url} answered {exc.code}: {detail}", kind="refused", status=exc.code, detail=detail
            ) from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, a malformed URL
            reason = getattr(exc, "reason", exc)
            raise StubAdminError(f"{method} {url} failed: {reason}", kind="unreachable", detail=str(reason)) from None
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise self._not_stub(method, path, "did not answer JSON", status=200) from None

    def _not_stub(self, method: str, path: str, why: str, *, status: int = 200, detail: str = "") -> StubAdminError:
        message = f"{method} {self.base}{ADMIN_PREFIX}{path} {why}"
        return StubAdminError(message, kind="not-stub", status=status, detail=detail)
