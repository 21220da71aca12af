"""SessionJWTAuthentication: the protected-route 401 table, and its one-query cost."""

from datetime import timedelta

import jwt
import pytest

from accounts.models import Session
from accounts.signing import token_backend
from todos.models import Todo

LOGGED_OUT = "You have been logged out. Please log in again."
REJECTED = 'Bearer realm="api", error="invalid_token"'


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def get_todos(client, authorization=None):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    return client.get("/todos", **extra)


@pytest.mark.parametrize(
    "authorization", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Token abc", "Bearer a b"]
)
def test_missing_or_non_bearer_header_401_token_required(api_client, db, authorization):
    response = get_todos(api_client, authorization)
    assert response.status_code == 401
    assert response.json() == {"error": "JWT token is required", "code": "token_required"}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def _forged(tokens):
    return jwt.encode(claims(tokens["access_token"]), "not-our-key-" + "k" * 40, algorithm="HS256")


def _alg_none(tokens):
    return jwt.encode(claims(tokens["access_token"]), None, algorithm="none")


def _tampered(tokens):
    header, _payload, signature = tokens["access_token"].split(".")
    other = jwt.utils.base64url_encode(b'{"sub":"999","sid":"x","token_type":"access"}').decode()
    return f"{header}.{other}.{signature}"


def _header_not_an_object(tokens):
    _header, payload, signature = tokens["access_token"].split(".")
    return f"{jwt.utils.base64url_encode(b'[]').decode()}.{payload}.{signature}"


def _our_kid_another_algorithm(tokens):
    """Our key's kid, signed by anyone with an algorithm of their choosing: the key names
    its own algorithm, and the header it was picked by is verified with the rest."""
    header = jwt.get_unverified_header(tokens["access_token"])
    return jwt.encode(
        claims(tokens["access_token"]),
        "chosen-by-the-attacker-" + "k" * 48,  # 71 bytes: a key HS512 calls long enough
        algorithm="HS512",
        headers={"kid": header["kid"]},
    )


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda t: "not.a.jwt", "Token is invalid"),
        (_forged, "Token is invalid"),
        (_alg_none, "Token is invalid"),
        (_tampered, "Token is invalid"),
        (_header_not_an_object, "Token is invalid"),
        (_our_kid_another_algorithm, "Token is invalid"),
        (lambda t: t["refresh_token"], "Token has wrong type"),
    ],
    ids=[
        "malformed",
        "forged",
        "alg-none",
        "tampered",
        "header-not-an-object",
        "our-kid-another-algorithm",
        "refresh-as-access",
    ],
)
def test_bad_token_401_invalid_jwt_with_reason(api_client, tokens, make_token, reason):
    response = get_todos(api_client, f"Bearer {make_token(tokens)}")
    assert response.status_code == 401
    assert response.json() == {"error": f"Invalid JWT token: {reason}", "code": "invalid_token"}
    assert response["WWW-Authenticate"] == REJECTED


def test_expired_token_401_with_frozen_clock(api_client, user, login, time_machine):
    time_machine.move_to("2026-03-01 09:00:00", tick=False)
    tokens = login(user)
    time_machine.shift(timedelta(minutes=15))
    response = get_todos(api_client, f"Bearer {tokens['access_token']}")
    assert response.status_code == 401
    assert response.json() == {"error": "Token has expired", "code": "token_expired"}
    assert response["WWW-Authenticate"] == REJECTED


def test_token_valid_until_just_before_expiry(api_client, user, login, time_machine):
    time_machine.move_to("2026-03-01 09:00:00", tick=False)
    tokens = login(user)
    time_machine.shift(timedelta(minutes=14, seconds=59))
    assert get_todos(api_client, f"Bearer {tokens['access_token']}").status_code == 200


def test_revoked_session_401_logged_out(api_client, tokens):
    Session.objects.update(revoked_at="2026-01-01T00:00:00Z", revoked_reason="admin")
    response = get_todos(api_client, f"Bearer {tokens['access_token']}")
    assert response.status_code == 401
    assert response.json() == {"error": LOGGED_OUT, "code": "session_revoked"}
    assert response["WWW-Authenticate"] == REJECTED


def test_deactivated_user_401(api_client, user, tokens):
    user.is_active = False
    user.save()
    response = get_todos(api_client, f"Bearer {tokens['access_token']}")
    assert response.status_code == 401
    assert response.json() == {
        "error": "Invalid JWT token: User is inactive",
        "code": "invalid_token",
    }


def test_deleted_user_401(api_client, user, tokens):
    user.delete()
    response = get_todos(api_client, f"Bearer {tokens['access_token']}")
    assert response.status_code == 401
    assert response.json() == {
        "error": "Invalid JWT token: Unknown session",
        "code": "invalid_token",
    }


def test_token_signed_with_our_key_but_no_session_claim_401(api_client, user):
    token = token_backend.encode(
        {"token_type": "access", "sub": str(user.pk), "jti": "j", "exp": 4102444800, "iat": 0}
    )
    response = get_todos(api_client, f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid JWT token: Token has no session"


def test_token_with_another_users_sub_for_a_session_401(api_client, tokens, other_user):
    payload = claims(tokens["access_token"]) | {"sub": str(other_user.pk)}
    token = token_backend.encode(payload)
    response = get_todos(api_client, f"Bearer {token}")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


@pytest.mark.parametrize("count", [1, 50])
def test_list_todos_costs_one_auth_query_plus_one(
    auth_client, user, count, django_assert_num_queries
):
    Todo.objects.bulk_create(Todo(owner=user, title=f"t{i}") for i in range(count))
    with django_assert_num_queries(2) as captured:
        response = auth_client.get("/todos")
    assert response.status_code == 200
    assert len(response.json()) == count
    assert "accounts_session" in captured.captured_queries[0]["sql"]
    assert "auth_user" in captured.captured_queries[0]["sql"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_bearer_scheme_is_case_insensitive(api_client, tokens, scheme):
    """RFC 7235 §2.1: an auth scheme is matched without regard to case."""
    assert get_todos(api_client, f"{scheme} {tokens['access_token']}").status_code == 200


def test_an_idle_sessions_access_token_is_expired(api_client, tokens):
    """Its refresh token idled out: the session is over, whatever the access token's exp."""
    from django.utils import timezone

    from accounts.models import Session

    Session.objects.update(idle_expires_at=timezone.now())
    response = get_todos(api_client, f"Bearer {tokens['access_token']}")
    assert response.status_code == 401 and response.json()["code"] == "token_expired"


def test_refresh_tokens_shorter_than_access_tokens_refused_at_start():
    from tests.test_settings import GOOD_SECRETS, manage

    result = manage(
        "check", DEBUG="0", ACCESS_TOKEN_LIFETIME="900", REFRESH_TOKEN_LIFETIME="5", **GOOD_SECRETS
    )
    assert result.returncode != 0
    assert "REFRESH_TOKEN_LIFETIME must be at least ACCESS_TOKEN_LIFETIME" in result.stderr
