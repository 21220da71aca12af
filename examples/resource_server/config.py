"""The resource server's settings, read once from the environment at start-up."""

import json
import math
import os
from dataclasses import dataclass
from urllib.parse import urlsplit


class ConfigError(Exception):
    """The environment does not describe a server that can run; the message names every problem."""


@dataclass(frozen=True)
class Config:
    """Every setting, documented in README.md."""

    issuer: str
    host: str
    port: int
    client_id: str
    client_secret: str
    audience: str | None
    tolerance_seconds: float
    memory_seconds: float
    max_remembered: int
    leeway_seconds: float
    http_timeout_seconds: float
    jwks_cooldown_seconds: float

    @classmethod
    def from_environ(cls, environ=os.environ) -> "Config":
        """Read RS_* variables; raise ConfigError listing all that are missing or wrong."""
        problems: list[str] = []

        def number(name: str, default: float, *, minimum: float = 0) -> float:
            raw = environ.get(name, "")
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not (math.isfinite(value) and value >= minimum):
                problems.append(f"{name} must be a number >= {minimum:g} (got {raw!r})")
                return default
            return value

        issuer = environ.get("RS_ISSUER", "http://localhost:8000").rstrip("/")
        if urlsplit(issuer).scheme not in ("http", "https") or not urlsplit(issuer).netloc:
            problems.append(f"RS_ISSUER must be an http(s) URL (got {issuer!r})")

        listen = environ.get("RS_LISTEN", "127.0.0.1:8001")
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            problems.append(f"RS_LISTEN must be HOST:PORT (got {listen!r})")
            host, port = "127.0.0.1", "8001"

        client_id, client_secret = _credentials(environ, problems)
        heartbeat = number("RS_HEARTBEAT_SECONDS", 10, minimum=0.1)
        config = cls(
            issuer=issuer,
            host=host,
            port=int(port),
            client_id=client_id,
            client_secret=client_secret,
            audience=environ.get("RS_AUDIENCE") or None,
            tolerance_seconds=number("RS_TOLERANCE_SECONDS", 3 * heartbeat, minimum=0.1),
            memory_seconds=number("RS_REVOKED_SID_SECONDS", 3600, minimum=1),
            max_remembered=int(number("RS_MAX_REMEMBERED", 100_000, minimum=1)),
            leeway_seconds=number("RS_LEEWAY_SECONDS", 5),
            http_timeout_seconds=number("RS_HTTP_TIMEOUT_SECONDS", 5, minimum=0.1),
            jwks_cooldown_seconds=number("RS_JWKS_COOLDOWN_SECONDS", 30),
        )
        if problems:
            raise ConfigError("Refusing to start:\n  - " + "\n  - ".join(problems))
        return config


def _credentials(environ, problems: list[str]) -> tuple[str, str]:
    """client_id and client_secret from RS_CREDENTIALS_FILE, or else from two variables."""
    path = environ.get("RS_CREDENTIALS_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
            client_id, client_secret = data["client_id"], data["client_secret"]
        except (OSError, ValueError, TypeError, KeyError):
            # No detail: a parse error's message could quote the secret.
            client_id = client_secret = None
        if not all(isinstance(value, str) and value for value in (client_id, client_secret)):
            problems.append(
                f"RS_CREDENTIALS_FILE {path!r} must be readable JSON holding a non-empty "
                '"client_id" and "client_secret"'
            )
            return "", ""
        return client_id, client_secret
    client_id = environ.get("RS_CLIENT_ID", "")
    client_secret = environ.get("RS_CLIENT_SECRET", "")
    if not client_id or not client_secret:
        problems.append(
            "set RS_CLIENT_ID and RS_CLIENT_SECRET, or RS_CREDENTIALS_FILE (the JSON that "
            "`manage.py add_resource_server NAME` prints)"
        )
    return client_id, client_secret
