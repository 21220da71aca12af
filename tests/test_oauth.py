"""What other services use: the JWKS, RFC 8414 metadata, introspection and revocation."""

import base64
import io
import json
from datetime import timedelta
from urllib.parse import urlencode

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ResourceServer, SecurityEvent, Session, SigningKey
from tests.conftest import bearer, database_snapshot

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


def register(name="gateway", **options) -> dict:
    out = io.StringIO()
    call_command("add_resource_server", name, stdout=out, **options)
    return json.loads(out.getvalue())


@pytest.fixture
def gateway() -> dict:
    """A registered resource server's credentials, as the command printed them."""
    return register()


def basic(credentials: dict) -> dict:
    pair = f"{credentials['client_id']}:{credentials['client_secret']}".encode()
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(pair).decode()}


def form_post(client, path: str, form: dict, **headers):
    """POST a form as RFC 7662 and 7009 clients send it: application/x-www-form-urlencoded."""
    return client.post(path, urlencode(form), content_type=FORM, **headers)


def introspect(client, credentials, token, **form):
    return form_post(client, "/auth/introspect", {"token": token, **form}, **basic(credentials))


def revoke(client, token, credentials=None, **form):
    headers = basic(credentials) if credentials else {}
    return form_post(client, "/auth/revoke", {"token": token, **form}, **headers)


def header(token: str) -> dict:
    return jwt.get_unverified_header(token)


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# --- keys and discovery -----------------------------------------------------------------------


def test_every_token_names_its_key_and_issuer(api_client, tokens):
    metadata = api_client.get("/.well-known/oauth-authorization-server").json()
    jwks = api_client.get("/.well-known/jwks.json").json()
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert header(token)["alg"] == "RS256"
        assert header(token)["kid"] == jwks["keys"][0]["kid"]
        assert claims(token)["iss"] == metadata["issuer"] == "http://testserver"


def test_an_access_token_verifies_with_the_published_key_alone(api_client, tokens):
    [published] = api_client.get("/.well-known/jwks.json").json()["keys"]
    key = jwt.PyJWK(published)
    verified = jwt.decode(
        tokens["access_token"], key.key, algorithms=["RS256"], issuer="http://testserver"
    )
    assert verified["sid"] == str(Session.objects.get().pk)


def test_the_jwks_publishes_public_halves_only_and_may_be_cached(api_client, tokens, settings):
    response = api_client.get("/.well-known/jwks.json")
    [key] = response.json()["keys"]
    assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}  # no d, p, q: nothing private
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert response["Cache-Control"] == "public, max-age=300"
    settings.ACCOUNTS = {**settings.ACCOUNTS, "JWKS_MAX_AGE": 60}
    assert api_client.get("/.well-known/jwks.json")["Cache-Control"] == "public, max-age=60"


def test_the_metadata_builds_its_urls_from_the_issuer_not_the_host(client, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "ISSUER": "https://api.example.com/"}
    body = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="localhost").json()
    assert body["issuer"] == "https://api.example.com"
    assert body["jwks_uri"] == "https://api.example.com/.well-known/jwks.json"
    assert body["introspection_endpoint"] == "https://api.example.com/auth/introspect"
    assert body["revocation_endpoint"] == "https://api.example.com/auth/revoke"
    assert body["introspection_endpoint_auth_methods_supported"] == ["client_secret_basic"]


def test_an_audience_goes_into_every_token_and_is_required(api_client, user, login, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "AUDIENCE": "todo-api"}
    tokens = login(user)
    assert claims(tokens["access_token"])["aud"] == "todo-api"
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200
    settings.ACCOUNTS = {**settings.ACCOUNTS, "AUDIENCE": "another-api"}
    refused = api_client.get("/todos", **bearer(tokens["access_token"]))
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"


def test_hmac_stays_a_configuration_and_publishes_nothing(api_client, user, login, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SIGNING_ALGORITHM": "HS256"}
    tokens = login(user)
    assert (
        header(tokens["access_token"])["alg"] == "HS256" and header(tokens["access_token"])["kid"]
    )
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200
    assert api_client.get("/.well-known/jwks.json").json() == {"keys": []}
    assert not SigningKey.objects.exists()


def test_a_token_signed_by_an_unknown_key_is_refused(api_client, tokens):
    from accounts import keys

    stranger = keys.generate("RS256")
    forged = jwt.encode(
        claims(tokens["access_token"]), stranger, algorithm="RS256", headers={"kid": "stranger"}
    )
    response = api_client.get("/todos", **bearer(forged))
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"


def test_a_token_with_our_kid_but_another_key_is_refused(api_client, tokens):
    from accounts import keys

    kid = header(tokens["access_token"])["kid"]
    forged = jwt.encode(
        claims(tokens["access_token"]),
        keys.generate("RS256"),
        algorithm="RS256",
        headers={"kid": kid},
    )
    assert api_client.get("/todos", **bearer(forged)).status_code == 401


def test_the_key_ring_never_stores_a_private_key_in_the_clear(tokens):
    [key] = SigningKey.objects.all()
    assert "PRIVATE KEY" not in key.encrypted_private_key
    assert "PUBLIC KEY" in key.public_key


# --- registering resource servers -----------------------------------------------------------


def test_add_resource_server_prints_credentials_once_and_stores_a_hash(gateway):
    server = ResourceServer.objects.get(name="gateway")
    assert server.client_id == gateway["client_id"]
    assert len(gateway["client_secret"]) >= 40
    assert gateway["client_secret"] not in str(ResourceServer.objects.values().get())
    assert server.check_secret(gateway["client_secret"])


def test_add_resource_server_refuses_a_taken_name_and_replaces_on_request(gateway):
    with pytest.raises(CommandError, match="registered already"):
        register()
    renewed = register(replace=True, push_url="http://127.0.0.1:8001/events")
    server = ResourceServer.objects.get()
    assert renewed["client_id"] == gateway["client_id"]
    assert not server.check_secret(gateway["client_secret"])
    assert server.check_secret(renewed["client_secret"])
    assert server.push_url == "http://127.0.0.1:8001/events"


def test_add_resource_server_refuses_a_push_url_that_is_no_url(db):
    with pytest.raises(CommandError, match="push_url: Enter a valid URL"):
        register(push_url="javascript:alert(1)")
    assert not ResourceServer.objects.exists()


# --- introspection ------------------------------------------------------------------------------


def test_introspection_of_a_live_access_token(api_client, gateway, tokens, user):
    body = introspect(api_client, gateway, tokens["access_token"]).json()
    token = claims(tokens["access_token"])
    assert body == {
        "active": True,
        "sub": str(user.pk),
        "sid": token["sid"],
        "exp": token["exp"],
        "iat": token["iat"],
        "jti": token["jti"],
        "token_type": "access",
        "iss": "http://testserver",
    }


def test_introspection_says_inactive_the_moment_the_session_ends(api_client, gateway, tokens):
    assert introspect(api_client, gateway, tokens["access_token"]).json()["active"] is True
    api_client.post(
        "/auth/logout",
        {"refresh_token": tokens["refresh_token"]},
        format="json",
        **bearer(tokens["access_token"]),
    )
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert introspect(api_client, gateway, token).json() == {"active": False}


def test_introspection_of_refresh_tokens_current_only(api_client, gateway, tokens):
    body = introspect(api_client, gateway, tokens["refresh_token"], token_type_hint="access_token")
    assert body.json()["active"] is True and body.json()["token_type"] == "refresh"
    api_client.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json")
    # Rotated out: no longer usable, though the grace window may still forgive a retry.
    assert introspect(api_client, gateway, tokens["refresh_token"]).json() == {"active": False}


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 5000, "eyJhbGciOiJub25lIn0.e30."])
def test_introspection_of_anything_else_is_inactive(api_client, gateway, token):
    assert introspect(api_client, gateway, token).json() == {"active": False}


def test_introspection_of_a_deactivated_users_token_is_inactive(api_client, gateway, tokens, user):
    user.is_active = False
    user.save()
    assert introspect(api_client, gateway, tokens["access_token"]).json() == {"active": False}


@pytest.mark.parametrize(
    "credentials",
    [
        None,
        {"client_id": "rs_nobody", "client_secret": "x"},
        {"client_id": "rs_\x00nobody", "client_secret": "x"},
        {"client_id": "rs_" + "x" * 500, "client_secret": "x"},
        "wrong-secret",
        "disabled",
    ],
    ids=["none", "unknown client", "NUL in the id", "huge id", "wrong secret", "disabled server"],
)
def test_introspection_without_valid_credentials_401_basic(
    api_client, gateway, tokens, credentials
):
    if credentials == "wrong-secret":
        credentials = {**gateway, "client_secret": "not-" + gateway["client_secret"]}
    elif credentials == "disabled":
        ResourceServer.objects.update(enabled=False)
        credentials = gateway
    headers = basic(credentials) if credentials else {}
    response = form_post(
        api_client, "/auth/introspect", {"token": tokens["access_token"]}, **headers
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    body = response.json()
    assert body["error"] == body["code"] == "invalid_client" and body["error_description"]
    assert "active" not in body


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({}, "invalid_request"),
        ({"token": ""}, "invalid_request"),
        ({"token": "x", "token_type_hint": "id_token"}, "unsupported_token_type"),
    ],
)
def test_introspection_of_a_bad_form_400_oauth_error(api_client, gateway, form, code):
    response = form_post(api_client, "/auth/introspect", form, **basic(gateway))
    assert response.status_code == 400
    assert response.json()["error"] == response.json()["code"] == code


def test_introspection_takes_a_form_not_json(api_client, gateway, tokens):
    response = api_client.post(
        "/auth/introspect", {"token": tokens["access_token"]}, format="json", **basic(gateway)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_introspection_is_rate_limited_per_client(api_client, gateway, tokens, settings, make_user):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "THROTTLE_RATES": {"introspection": "3/minute"}}
    other = register("other")
    statuses = [introspect(api_client, gateway, "x").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert introspect(api_client, other, "x").status_code == 200  # its own budget


def test_introspection_writes_nothing(api_client, gateway, tokens):
    before = database_snapshot()
    introspect(api_client, gateway, tokens["access_token"])
    introspect(api_client, gateway, "garbage")
    assert database_snapshot() == before


# --- revocation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
def test_revoking_a_token_ends_its_session(api_client, tokens, which):
    response = revoke(api_client, tokens[which])
    assert response.status_code == 200 and response.json() == {}
    session = Session.objects.get()
    assert session.revoked_reason == "revoked_by_client"
    refused = api_client.get("/todos", **bearer(tokens["access_token"]))
    assert refused.status_code == 401 and refused.json()["code"] == "session_revoked"
    refresh = api_client.post(
        "/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json"
    )
    assert refresh.status_code == 401
    event = SecurityEvent.objects.get(kind="session_revoked")
    assert (event.reason, event.session_id) == ("revoked_by_client", session.pk)


def test_a_resource_server_revoking_is_named_in_the_record(api_client, gateway, tokens):
    assert revoke(api_client, tokens["refresh_token"], gateway).status_code == 200
    event = SecurityEvent.objects.get(kind="session_revoked")
    assert event.details == {"resource_server": "gateway"}


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_revoking_an_unknown_token_200_and_nothing_changes(api_client, tokens, token):
    before = database_snapshot()
    response = revoke(api_client, token)
    assert response.status_code == 200 and response.json() == {}
    assert database_snapshot() == before


def test_revoking_twice_or_after_logout_200(api_client, tokens):
    assert revoke(api_client, tokens["refresh_token"]).status_code == 200
    before = database_snapshot()
    assert revoke(api_client, tokens["refresh_token"]).status_code == 200
    assert revoke(api_client, tokens["access_token"]).status_code == 200
    assert database_snapshot() == before


def test_revoking_an_expired_token_200_and_nothing_changes(api_client, tokens, time_machine):
    time_machine.move_to(timezone.now() + timedelta(hours=1))  # it lived 15 minutes
    before = database_snapshot()
    assert revoke(api_client, tokens["access_token"]).status_code == 200
    assert database_snapshot() == before


def test_revoking_without_a_token_400_invalid_request(api_client, db):
    response = form_post(api_client, "/auth/revoke", {})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_revoking_with_bad_credentials_401_and_nothing_changes(api_client, gateway, tokens):
    before = database_snapshot()
    response = revoke(api_client, tokens["refresh_token"], {**gateway, "client_secret": "nope"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert database_snapshot() == before


def test_revoking_an_unsupported_token_type_400(api_client, tokens):
    response = revoke(api_client, tokens["refresh_token"], token_type_hint="id_token")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_token_type"
    assert Session.objects.get().revoked_at is None


def test_a_resource_servers_own_client_does_not_reach_user_routes(gateway, tokens):
    """Its Basic credentials open introspection and revocation only."""
    client = APIClient()
    assert client.get("/todos", **basic(gateway)).status_code == 401


def test_parallel_revocations_never_pass_the_rate(settings):
    """The second review's burst: 200 parallel revocations got 189 through a 120/minute limit."""
    from concurrent.futures import ThreadPoolExecutor

    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "revocation": "5/minute"},
    }

    def one(_):
        return form_post(APIClient(), "/auth/revoke", {"token": "garbage"}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(one, range(30)))
    assert statuses.count(200) == 5 and statuses.count(429) == 25


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        ({"name": "   "}, "cannot be blank|needs a name"),
        ({"name": "x" * 101}, "at most 100 characters"),
        ({"push_url": "http://user:pass@gateway.internal/events"}, "carries no user or password"),
        ({"push_url": "http://169.254.169.254/latest/meta-data/"}, "No receiver lives at"),
        ({"push_url": "http://0.0.0.0:8001/events"}, "No receiver lives at"),
        ({"push_url": "ftp://gateway.internal/events"}, "Enter a valid URL"),
    ],
)
def test_add_resource_server_refuses_what_cannot_be_one(db, options, refusal):
    name = options.pop("name", "gateway")
    with pytest.raises(CommandError, match=refusal):
        register(name, **options)
    assert not ResourceServer.objects.exists()


def test_a_token_sent_twice_400_invalid_request(api_client, gateway, tokens):
    body = f"token={tokens['access_token']}&token={tokens['refresh_token']}"
    response = api_client.post("/auth/introspect", body, content_type=FORM, **basic(gateway))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_an_empty_hint_400_as_the_schema_says(api_client, tokens):
    response = revoke(api_client, tokens["refresh_token"], token_type_hint="")
    assert response.status_code == 400 and response.json()["error"] == "unsupported_token_type"
    assert Session.objects.get().revoked_at is None
