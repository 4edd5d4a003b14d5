"""The Redis AUTH token from Secrets Manager, read once at init. boto3 is imported only when a secret is set."""

from __future__ import annotations

import json


class SecretError(RuntimeError):
    """The secret could not be read or holds no token; the message names the ARN, never the value."""


def read_auth_token(secret_arn: str, *, timeout: float = 3.0) -> str:
    """The secret is either the bare token or JSON with one of "token", "authToken", "password"."""
    import boto3  # noqa: PLC0415 - a cold-start cost paid only by functions that use a secret
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2, "mode": "standard"})
    try:
        value = boto3.client("secretsmanager", config=config).get_secret_value(SecretId=secret_arn)
    except (BotoCoreError, ClientError) as exc:
        raise SecretError(f"REDIS_AUTH_SECRET_ARN: cannot read {secret_arn}: {type(exc).__name__}") from None
    text = str(value.get("SecretString") or "")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretError(f"REDIS_AUTH_SECRET_ARN: {secret_arn} holds invalid JSON") from None
        for field in ("token", "authToken", "password"):
            if isinstance(data, dict) and isinstance(data.get(field), str) and data[field]:
                return str(data[field])
        raise SecretError(f"REDIS_AUTH_SECRET_ARN: {secret_arn} has no token, authToken or password field")
    if not text:
        raise SecretError(f"REDIS_AUTH_SECRET_ARN: {secret_arn} is empty")
    return text
