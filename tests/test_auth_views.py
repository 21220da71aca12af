"""Signup, login, refresh and logout: the contract's exact statuses and texts."""

import jwt
import pytest
from django.contrib.auth import get_user_model

from accounts.models import Session
from tests.conftest import bearer

User = get_user_model()

CREDENTIALS_REQUIRED = "Username and password are required"
REFRESH_REQUIRED = "Refresh token is required in request body"


def post(client, url, body, **extra):
    return client.post(url, body, format="json", **extra)


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# --- signup ---------------------------------------------------------------------------


def test_signup_creates_user_201(api_client, db):
    response = post(
        api_client, "/auth/signup", {"username": "carol", "password": "s3cure-enough-pw"}
    )
    assert response.status_code == 201
    assert response.json() == {"message": "Signup successful. Please log in to continue."}
    assert User.objects.get(username="carol").check_password("s3cure-enough-pw")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "carol"},
        {"password": "s3cure-enough-pw"},
        {"username": "", "password": "x"},
        {"username": None, "password": "s3cure-enough-pw"},
        {"username": 5, "password": "s3cure-enough-pw"},
    ],
)
def test_signup_missing_credentials_400(api_client, db, body):
    response = post(api_client, "/auth/signup", body)
    assert response.status_code == 400
    assert response.json()["error"] == CREDENTIALS_REQUIRED
    assert User.objects.count() == 0


def test_signup_existing_username_400(api_client, user):
    response = post(
        api_client, "/auth/signup", {"username": user.username, "password": "another-good-pw"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Username already exists", "code": "username_taken"}


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "too short"), ("password123", "too common"), ("8302749158264", "entirely numeric")],
)
def test_signup_weak_password_400_says_why(api_client, db, password, reason):
    response = post(api_client, "/auth/signup", {"username": "carol", "password": password})
    assert response.status_code == 400
    body = response.json()
    assert reason in body["error"]
    assert body["code"] == "invalid_password"
    assert not User.objects.filter(username="carol").exists()


def test_signup_invalid_username_400(api_client, db):
    response = post(
        api_client, "/auth/signup", {"username": "bad name!", "password": "s3cure-enough-pw"}
    )
    assert response.status_code == 400
    assert "valid username" in response.json()["error"]
    assert User.objects.count() == 0


# --- login ----------------------------------------------------------------------------


def test_login_returns_both_tokens_200(api_client, user, password):
    response = post(api_client, "/auth/login", {"username": user.username, "password": password})
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Login successful"
    access, refresh = claims(body["access_token"]), claims(body["refresh_token"])
    assert access["exp"] - access["iat"] == 900
    assert access["sub"] == str(user.pk)
    assert access["sid"] == refresh["sid"] == str(Session.objects.get(user=user).pk)
    assert access["jti"] != refresh["jti"]
    assert access["token_type"] == "access" and refresh["token_type"] == "refresh"


@pytest.mark.parametrize(
    "body", [{}, {"username": "alice"}, {"password": "x"}, {"username": "", "password": ""}]
)
def test_login_missing_credentials_400(api_client, db, body):
    response = post(api_client, "/auth/login", body)
    assert response.status_code == 400
    assert response.json()["error"] == CREDENTIALS_REQUIRED


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_login_wrong_password_or_unknown_user_same_401(api_client, user, username):
    response = post(api_client, "/auth/login", {"username": username, "password": "wrong-password"})
    assert response.status_code == 401
    assert response.json() == {
        "error": "Invalid username or password",
        "code": "invalid_credentials",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not Session.objects.exists()


def test_login_inactive_user_401(api_client, make_user, password):
    inactive = make_user("dormant", is_active=False)
    response = post(
        api_client, "/auth/login", {"username": inactive.username, "password": password}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_login_ignores_stale_authorization_header(api_client, user, password):
    response = post(
        api_client,
        "/auth/login",
        {"username": user.username, "password": password},
        HTTP_AUTHORIZATION="Bearer not-a-token",
    )
    assert response.status_code == 200


def test_two_logins_same_second_give_different_tokens(api_client, user, login, time_machine):
    time_machine.move_to("2026-01-01 12:00:00", tick=False)
    first, second = login(user), login(user)
    assert first["access_token"] != second["access_token"]
    assert first["refresh_token"] != second["refresh_token"]
    assert claims(first["access_token"])["sid"] != claims(second["access_token"])["sid"]


# --- refresh --------------------------------------------------------------------------


def test_refresh_rotates_both_tokens_200(api_client, tokens):
    response = post(api_client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token"}
    assert body["refresh_token"] != tokens["refresh_token"]
    assert claims(body["refresh_token"])["sid"] == claims(tokens["refresh_token"])["sid"]
    assert api_client.get("/todos", **bearer(body["access_token"])).status_code == 200


@pytest.mark.parametrize(
    "body", [{}, {"refresh_token": ""}, {"refresh_token": None}, {"refresh_token": 7}]
)
def test_refresh_missing_token_400(api_client, db, body):
    response = post(api_client, "/auth/refresh", body)
    assert response.status_code == 400
    assert response.json()["error"] == REFRESH_REQUIRED


def forged(token: str) -> str:
    return jwt.encode(claims(token), "attacker-key-" + "x" * 32, algorithm="HS256")


@pytest.mark.parametrize(
    "make_bad",
    [
        lambda t: "garbage",
        lambda t: t["access_token"],  # an access token is not a refresh token
        lambda t: forged(t["refresh_token"]),
        lambda t: t["refresh_token"][:-4] + "AAAA",
        lambda t: jwt.encode(claims(t["refresh_token"]), None, algorithm="none"),
    ],
    ids=["garbage", "access-token", "forged", "tampered", "alg-none"],
)
def test_refresh_bad_token_401(api_client, tokens, make_bad):
    response = post(api_client, "/auth/refresh", {"refresh_token": make_bad(tokens)})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid refresh token", "code": "invalid_refresh_token"}
    assert response["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert Session.objects.get().revoked_at is None  # a forgery never ends the real session


# --- logout ---------------------------------------------------------------------------


def logout(client, access, refresh):
    return post(client, "/auth/logout", {"refresh_token": refresh}, **bearer(access))


def test_logout_revokes_session_and_blacklists_refresh_200(api_client, tokens):
    response = logout(api_client, tokens["access_token"], tokens["refresh_token"])
    assert response.status_code == 200
    assert response.json() == {"message": "Logout successful"}
    session = Session.objects.get()
    assert session.revoked_reason == "logout"
    assert session.current_token.blacklistedtoken is not None


def test_logout_without_json_body_415(api_client, tokens):
    response = api_client.post("/auth/logout", **bearer(tokens["access_token"]))
    assert response.status_code == 415
    assert response.json() == {"error": "Request must be JSON", "code": "unsupported_media_type"}
    form = api_client.post(
        "/auth/logout", {"refresh_token": tokens["refresh_token"]}, **bearer(tokens["access_token"])
    )
    assert form.status_code == 415
    assert Session.objects.get().revoked_at is None


def test_logout_without_access_token_401(api_client, tokens):
    response = post(api_client, "/auth/logout", {"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 401
    assert response.json() == {
        "error": "Access token is required in Authorization header",
        "code": "access_token_required",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert Session.objects.get().revoked_at is None


def test_logout_without_refresh_token_400(api_client, tokens):
    response = post(api_client, "/auth/logout", {}, **bearer(tokens["access_token"]))
    assert response.status_code == 400
    assert response.json()["error"] == REFRESH_REQUIRED
    assert Session.objects.get().revoked_at is None


def test_logout_with_other_users_refresh_token_refused(api_client, user, other_user, login):
    mine, theirs = login(user), login(other_user)
    response = logout(api_client, mine["access_token"], theirs["refresh_token"])
    assert response.status_code == 403
    assert response.json()["code"] == "refresh_token_mismatch"
    assert api_client.get("/todos", **bearer(theirs["access_token"])).status_code == 200
    refreshed = post(api_client, "/auth/refresh", {"refresh_token": theirs["refresh_token"]})
    assert refreshed.status_code == 200


def test_logout_with_own_other_session_refresh_token_refused(api_client, user, login):
    first, second = login(user), login(user)
    response = logout(api_client, first["access_token"], second["refresh_token"])
    assert response.status_code == 403
    assert not Session.objects.filter(revoked_at__isnull=False).exists()


def test_logout_one_session_leaves_other_working(api_client, user, login):
    first, second = login(user), login(user)
    assert logout(api_client, first["access_token"], first["refresh_token"]).status_code == 200
    assert api_client.get("/todos", **bearer(first["access_token"])).status_code == 401
    assert api_client.get("/todos", **bearer(second["access_token"])).status_code == 200
    assert (
        post(api_client, "/auth/refresh", {"refresh_token": second["refresh_token"]}).status_code
        == 200
    )


def test_logout_twice_second_is_401_logged_out(api_client, tokens):
    logout(api_client, tokens["access_token"], tokens["refresh_token"])
    again = logout(api_client, tokens["access_token"], tokens["refresh_token"])
    assert again.status_code == 401
    assert again.json()["code"] == "session_revoked"


def test_answers_that_carry_tokens_are_never_cached(api_client, user, password):
    login = api_client.post(
        "/auth/login", {"username": user.username, "password": password}, format="json"
    )
    refreshed = api_client.post(
        "/auth/refresh", {"refresh_token": login.json()["refresh_token"]}, format="json"
    )
    for response in (login, refreshed):
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
