"""No secret in configuration errors: a bad REDIS_URL or UPSTREAM_URL is named, its credentials are not.

The message of a ConfigError stops the function at init and lands in the init error (CloudWatch Logs, and the
local gateway's log): a password inside the URL must never be part of it.
"""

from __future__ import annotations

import pytest

from proxy.config import ConfigError, Settings

SECRET = "hunter2-s3cr3t"


@pytest.mark.parametrize(
    "env",
    [
        {"UPSTREAM_URL": "http://api.example", "REDIS_URL": f"redis://:{SECRET}@cache:99999/0"},  # bad port
        {"UPSTREAM_URL": "http://api.example", "REDIS_URL": f"http://default:{SECRET}@cache/0"},  # bad scheme
        {"UPSTREAM_URL": "http://api.example", "REDIS_URL": f"rediss://user:{SECRET}@/0"},  # no host
        {"UPSTREAM_URL": f"https://user:{SECRET}@api.example?key=1"},  # a query
        {"UPSTREAM_URL": f"ftp://user:{SECRET}@api.example"},
        {"UPSTREAM_URL": f"https://user:{SECRET}@api.example:http"},
        {"UPSTREAM_URL": "http://api.example", "REDIS_URL": f"redis://:{SECRET}/x@cache:0x/0"},  # raw "/"
        {"UPSTREAM_URL": "http://api.example", "REDIS_URL": f"redis://:{SECRET}@x@cache:-1/0"},  # raw "@"
    ],
)
def test_a_bad_url_is_named_without_its_credentials(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert SECRET not in message
    assert message.startswith(("REDIS_URL", "UPSTREAM_URL"))
    assert "***@" in message  # the reader still sees that credentials were given, and where the URL went wrong


def test_good_urls_with_credentials_are_kept_as_they_are() -> None:
    settings = Settings.from_env(
        {"UPSTREAM_URL": "https://api.example", "REDIS_URL": f"rediss://default:{SECRET}@cache:6380/0"}
    )
    assert settings.redis_url == f"rediss://default:{SECRET}@cache:6380/0"
