"""Another service, in another process, verifies our tokens with the JWKS alone."""

import base64
import io
import json
import subprocess
import sys
import textwrap
import urllib.request

import pytest
from django.core.management import call_command

from tests.conftest import PASSWORD

# What a resource server's developer writes: PyJWT and our published URLs, nothing else.
VERIFIER = textwrap.dedent(
    """
    import json, sys, urllib.request, urllib.parse, base64
    import jwt

    issuer, token, client_id, secret = sys.argv[1:5]
    with urllib.request.urlopen(issuer + "/.well-known/oauth-authorization-server") as answer:
        metadata = json.load(answer)
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], issuer=metadata["issuer"])

    def introspect():
        form = urllib.parse.urlencode({"token": token}).encode()
        request = urllib.request.Request(metadata["introspection_endpoint"], data=form)
        pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        request.add_header("Authorization", "Basic " + pair)
        with urllib.request.urlopen(request) as answer:
            return json.load(answer)

    print(json.dumps({"kid": signing_key.key_id, "claims": claims, "introspection": introspect()}))
    """
)


def post_json(url: str, body: dict, **headers) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.load(answer)


def verify_elsewhere(issuer: str, token: str, credentials: dict) -> dict:
    """Run the verifier in a fresh interpreter: no Django settings, no database, no secret."""
    result = subprocess.run(
        [sys.executable, "-c", VERIFIER, issuer, token, *credentials.values()],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    )
    return json.loads(result.stdout)


@pytest.fixture
def issuer(live_server, settings) -> str:
    settings.ACCOUNTS = {**settings.ACCOUNTS, "ISSUER": live_server.url}
    return live_server.url


def test_a_verifier_elsewhere_checks_a_token_by_jwks_then_sees_logout_by_introspection(
    issuer, user
):
    out = io.StringIO()
    call_command("add_resource_server", "verifier", stdout=out)
    credentials = json.loads(out.getvalue())
    _, login = post_json(f"{issuer}/auth/login", {"username": user.username, "password": PASSWORD})
    access = login["access_token"]

    seen = verify_elsewhere(issuer, access, credentials)

    header = json.loads(base64.urlsafe_b64decode(access.split(".")[0] + "=="))
    assert seen["kid"] == header["kid"]
    assert seen["claims"]["iss"] == issuer and seen["claims"]["token_type"] == "access"
    assert seen["introspection"]["active"] is True

    status, _ = post_json(
        f"{issuer}/auth/logout",
        {"refresh_token": login["refresh_token"]},
        Authorization=f"Bearer {access}",
    )
    assert status == 200
    after = verify_elsewhere(issuer, access, credentials)
    assert after["claims"]["sid"] == seen["claims"]["sid"]  # the signature still checks out...
    assert after["introspection"] == {"active": False}  # ...but the session has ended
