"""The harness: a fake API (metadata, JWKS, introspection) and the resource server as a process."""

import http.client
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

SERVER = Path(__file__).resolve().parents[2] / "examples" / "resource_server" / "server.py"
CLIENT_ID = "rs-test-client"
CLIENT_SECRET = "rs-test-secret/+="  # characters that Basic's form-encoding must escape
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
SET_TYPE = "application/secevent+jwt"
# Bounds that keep every wait short and let a broken server fail the test instead of hanging it.
START_TIMEOUT = 10
REQUEST_TIMEOUT = 10
KEYS = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in "ABX"}


class FakeApi:
    """The API's side of the wire, as the test wants it: metadata, a JWKS and introspection."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiHandler)
        self.httpd.daemon_threads = True
        self.httpd.api = self
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.reset()
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self) -> None:
        """Back to one published key, active tokens and no calls counted."""
        self.published = ["A"]  # kids in the JWKS; "X" is never published
        self.answer: object = {"active": True}  # a dict, a status code, "hangup" or "garbage"
        self.introspections: list[tuple[str, dict]] = []  # (Authorization, form) per call
        self.jwks_fetches = 0
        self.jwks_down = False
        self.metadata_issuer = self.issuer

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def jwks(self) -> dict:
        """The published public keys, as RFC 7517 JWKs."""
        keys = []
        for kid in self.published:
            key = jwt.algorithms.RSAAlgorithm.to_jwk(KEYS[kid].public_key(), as_dict=True)
            keys.append({**key, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def access_token(self, *, kid: str = "A", signer: str | None = None, **claims) -> str:
        """An access token as the API mints it; `signer` signs with another key than `kid`'s."""
        now = int(time.time())
        payload = {
            "token_type": "access",
            "iss": self.issuer,
            "sub": "42",
            "sid": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 900,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, KEYS[signer or kid], algorithm="RS256", headers={"kid": kid})

    def event(
        self, event_type: str, body: dict, *, kid="A", signer=None, typ="secevent+jwt", **claims
    ) -> str:
        """A SET as the API pushes it; keyword arguments replace (None: drop) its claims."""
        payload = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "jti": uuid.uuid4().hex,
            "iat": int(time.time()),
            "events": {event_type: body},
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        headers = {"kid": kid, "typ": typ}
        return jwt.encode(payload, KEYS[signer or kid], algorithm="RS256", headers=headers)

    def revoked(self, sid: str, **claims) -> str:
        """A CAEP session-revoked SET for this sid."""
        sub_id = {
            "format": "complex",
            "session": {"format": "opaque", "id": sid},
            "user": {"format": "iss_sub", "iss": self.issuer, "sub": "42"},
        }
        body = {
            "event_timestamp": int(time.time()),
            "initiating_entity": "user",
            "reason_admin": {"en": "logout"},
        }
        return self.event(SESSION_REVOKED, body, sub_id=sub_id, **claims)

    def heartbeat(self, **claims) -> str:
        """An SSF verification SET, the API's heartbeat."""
        sub_id = {"format": "opaque", "id": CLIENT_ID}
        body = {"state": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        return self.event(VERIFICATION, body, sub_id=sub_id, **claims)


class FakeApiHandler(BaseHTTPRequestHandler):
    """Serves FakeApi's three endpoints."""

    def do_GET(self) -> None:
        api = self.server.api
        if self.path == "/.well-known/oauth-authorization-server":
            self._json(
                200,
                {
                    "issuer": api.metadata_issuer,
                    "jwks_uri": f"{api.issuer}/jwks",
                    "introspection_endpoint": f"{api.issuer}/introspect",
                    "revocation_endpoint": f"{api.issuer}/revoke",
                },
            )
        elif self.path == "/jwks":
            api.jwks_fetches += 1
            if api.jwks_down:
                self._json(503, {"error": "down"})
            else:
                self._json(200, api.jwks())
        else:
            self._json(404, {})

    def do_POST(self) -> None:
        api = self.server.api
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        api.introspections.append((self.headers.get("Authorization", ""), form))
        if api.answer == "hangup":
            return  # close the connection without a word
        if api.answer == "garbage":
            self._send(200, b"<html>not json</html>")
        elif isinstance(api.answer, int):
            self._json(api.answer, {"error": "invalid_client"})
        else:
            self._json(200, api.answer)

    def _json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


class ResourceServer:
    """`python examples/resource_server/server.py` on a free loopback port, logging to a file."""

    def __init__(self, log: Path, env: dict) -> None:
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, str(SERVER)], env=env, stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not (found := re.search(r"listening on http://127.0.0.1:(\d+)", self.log_text())):
            assert self.process.poll() is None, f"exited: {self.log_text()}"
            assert time.monotonic() < deadline, f"not listening after {START_TIMEOUT}s"
            time.sleep(0.02)
        self.port = int(found.group(1))
        self.started_at = self.health()["started_at"]

    def log_text(self) -> str:
        return self.log.read_text()

    def call(self, method: str, path: str, body: bytes | None = None, headers=None):
        """One request; returns (status, headers, parsed JSON or None for an empty body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body, headers or {})
            response = conn.getresponse()
            text = response.read()
        finally:
            conn.close()
        return response.status, response.headers, json.loads(text) if text else None

    def whoami(self, token: str | None):
        return self.call("GET", "/whoami", headers={"Authorization": f"Bearer {token}"})

    def push(self, set_jwt: str, content_type: str = SET_TYPE):
        return self.call("POST", "/events", set_jwt.encode(), {"Content-Type": content_type})

    def health(self) -> dict:
        return self.call("GET", "/healthz")[2]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def server_env(api: FakeApi, **overrides: str) -> dict:
    """The resource server's environment for this fake API; an override of None unsets."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "RS_ISSUER": api.issuer,
        "RS_LISTEN": "127.0.0.1:0",
        "RS_CLIENT_ID": CLIENT_ID,
        "RS_CLIENT_SECRET": CLIENT_SECRET,
        # Same machine, same clock: no leeway, so "issued before start-up" is exact.
        "RS_LEEWAY_SECONDS": "0",
        "RS_JWKS_COOLDOWN_SECONDS": "0",
        "RS_HTTP_TIMEOUT_SECONDS": "2",
        **overrides,
    }
    return {name: value for name, value in env.items() if value is not None}


def wait_for(predicate, timeout: float = 5) -> None:
    """Poll until predicate() holds, failing the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def assert_invalid_token(reply) -> None:
    """A 401 for a token presented and refused (RFC 6750's invalid_token)."""
    status, headers, body = reply
    assert status == 401, body
    assert body["code"] == "invalid_token"
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]


def wait_past(moment: float) -> None:
    """Sleep until the first whole second at or after `moment`: tokens minted then have an
    iat (whole seconds) that is not before it."""
    time.sleep(max(0.0, math.ceil(moment) - time.time()))


def sid_of(token: str) -> str:
    """The sid claim of one of our own test tokens."""
    return jwt.decode(token, options={"verify_signature": False})["sid"]
