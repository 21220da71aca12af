"""Cookie mode (accounts.browser): the refresh cookie, its rotation, logout, and the CSRF check."""

from datetime import timedelta

import jwt
import pytest
from django.test import Client
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.browser import refresh_cookie
from accounts.models import RevokeReason, SecurityEvent, Session
from tests.conftest import PASSWORD, bearer, database_snapshot

LOGGED_OUT = "You have been logged out. Please log in again."
OWN_ORIGIN = "http://testserver"
FETCH = {"X-Requested-With": "fetch", "Origin": OWN_ORIGIN}
ROUTES = ("/auth/browser/login", "/auth/browser/refresh", "/auth/browser/logout")


@pytest.fixture
def browser(db) -> Client:
    """A browser of its own: Django's test client keeps the cookies it is sent."""
    return Client()


def post(browser: Client, path: str, body=None, headers=FETCH):
    if body is None:
        return browser.post(path, headers=headers)
    return browser.post(path, body, content_type="application/json", headers=headers)


def sign_in(browser: Client, user):
    response = post(
        browser, "/auth/browser/login", {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.content
    return response


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def cookie_of(response):
    return response.cookies[refresh_cookie().name]


# --- login and the cookie --------------------------------------------------------------------


def test_browser_login_sets_the_refresh_cookie_and_returns_only_the_access_token(browser, user):
    response = sign_in(browser, user)

    body = response.json()
    assert list(body) == ["message", "access_token"]
    assert body["message"] == "Login successful"
    cookie = cookie_of(response)
    refresh = claims(cookie.value)
    assert refresh["token_type"] == "refresh"
    assert refresh["sid"] == claims(body["access_token"])["sid"] == str(Session.objects.get().pk)
    assert cookie.value not in response.content.decode()


def test_refresh_cookie_flags(browser, user, settings):
    cookie = cookie_of(sign_in(browser, user))

    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert cookie["secure"] is True
    assert not cookie["domain"]
    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds()
    assert lifetime - 2 <= int(cookie["max-age"]) <= lifetime


def test_secure_refresh_cookie_is_a_host_only_cookie(browser, user):
    """`__Host-`: a browser refuses it from a sibling subdomain, or with a Domain or Path."""
    response = sign_in(browser, user)
    [name] = [name for name in response.cookies if "refresh" in name]
    assert name == "__Host-refresh_token"
    cookie = response.cookies[name]
    assert (cookie["secure"], cookie["path"], cookie["domain"]) == (True, "/", "")


def test_refresh_cookie_not_secure_when_the_setting_is_off(browser, user, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REFRESH_COOKIE_SECURE": False}
    response = sign_in(browser, user)
    cookie = response.cookies["refresh_token"]  # no prefix: __Host- needs Secure
    assert cookie["secure"] == ""
    assert cookie["httponly"] is True
    assert cookie["path"] == "/"
    assert post(browser, "/auth/browser/refresh").status_code == 200


def with_two_refresh_cookies(browser: Client, mine: str, planted: str) -> None:
    """The raw header a browser sends when another site of the domain planted a cookie."""
    name = refresh_cookie().name
    browser.cookies.clear()
    browser.defaults["HTTP_COOKIE"] = f"{name}={planted}; {name}={mine}"


@pytest.mark.parametrize("order", ["planted_last", "planted_first"])
def test_two_refresh_cookies_refused_not_resolved(browser, user, make_user, order):
    mine = cookie_of(sign_in(browser, user)).value
    planted = cookie_of(sign_in(Client(), make_user("mallory"))).value
    if order == "planted_first":
        mine, planted = planted, mine
    before = database_snapshot()
    with_two_refresh_cookies(browser, mine, planted)

    response = post(browser, "/auth/browser/refresh")

    assert response.status_code == 401
    assert response.json()["code"] == "duplicate_refresh_cookie"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response.cookies[refresh_cookie().name]["max-age"] == 0
    assert database_snapshot() == before  # neither session rotated


def test_logout_with_two_refresh_cookies_ends_neither_session(browser, user, make_user):
    mine = cookie_of(sign_in(browser, user)).value
    planted = cookie_of(sign_in(Client(), make_user("mallory"))).value
    with_two_refresh_cookies(browser, mine, planted)

    response = post(browser, "/auth/browser/logout")

    assert response.status_code == 401
    assert response.json()["code"] == "duplicate_refresh_cookie"
    assert response.cookies[refresh_cookie().name]["max-age"] == 0
    assert not Session.objects.revoked().exists()


def test_refresh_cookie_lives_as_long_as_its_token_not_past_the_session(browser, user, settings):
    # The refresh token never outlives the session's absolute expiry; nor does its cookie.
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=1)}
    cookie = cookie_of(sign_in(browser, user))
    assert 3600 - 2 <= int(cookie["max-age"]) <= 3600
    assert int(cookie["max-age"]) <= claims(cookie.value)["exp"] - claims(cookie.value)["iat"]


def test_cookie_responses_are_never_cached(browser, user):
    response = sign_in(browser, user)
    assert "no-store" in response["Cache-Control"]
    assert "no-store" in post(browser, "/auth/browser/refresh")["Cache-Control"]


def test_browser_login_same_texts_as_json_login(browser, user):
    wrong = post(browser, "/auth/browser/login", {"username": user.username, "password": "nope"})
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"error": "Invalid username or password", "code": "invalid_credentials"},
    )
    assert wrong["WWW-Authenticate"] == 'Bearer realm="api"'
    missing = post(browser, "/auth/browser/login", {"username": user.username})
    assert missing.status_code == 400
    assert missing.json()["error"] == "Username and password are required"
    assert refresh_cookie().name not in wrong.cookies | missing.cookies


def test_browser_login_shares_the_login_throttles(browser, api_client, user, settings):
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login_failure": "3/minute"},
    }
    wrong = {"username": user.username, "password": "wrong"}
    statuses = [post(browser, "/auth/browser/login", wrong).status_code for _ in range(2)]
    statuses.append(api_client.post("/auth/login", wrong, format="json").status_code)
    refused = post(
        browser, "/auth/browser/login", {"username": user.username, "password": PASSWORD}
    )

    assert statuses == [401, 401, 401]
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    assert not Session.objects.exists()


def test_browser_login_per_address_limit(browser, user, settings):
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login": "2/minute"},
    }
    body = {"username": user.username, "password": PASSWORD}
    statuses = [post(browser, "/auth/browser/login", body).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# --- refresh ---------------------------------------------------------------------------------


def test_browser_refresh_rotates_and_sets_a_new_cookie(browser, user):
    first = cookie_of(sign_in(browser, user)).value

    response = post(browser, "/auth/browser/refresh")

    assert response.status_code == 200
    assert list(response.json()) == ["access_token"]
    second = cookie_of(response)
    assert second.value != first
    assert second["httponly"] is True and second["path"] == "/"
    session = Session.objects.get()
    assert session.current_jti == claims(second.value)["jti"]
    assert session.previous_jti == claims(first)["jti"]
    assert BlacklistedToken.objects.filter(token__jti=claims(first)["jti"]).exists()
    assert claims(response.json()["access_token"])["sid"] == str(session.pk)


def test_two_refreshes_of_one_cookie_within_the_window_get_the_same_pair(browser, user, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REFRESH_REUSE_GRACE_SECONDS": 10}
    cookie = cookie_of(sign_in(browser, user)).value

    first = post(browser, "/auth/browser/refresh")
    first_cookie = cookie_of(first).value
    # A second tab of the same browser sent the same cookie before the first answer came.
    browser.cookies[refresh_cookie().name] = cookie
    second = post(browser, "/auth/browser/refresh")

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first_cookie == cookie_of(second).value != cookie
    assert Session.objects.get().revoked_at is None
    assert OutstandingToken.objects.count() == 2
    assert SecurityEvent.objects.filter(kind="refresh_replayed").count() == 1
    assert post(browser, "/auth/browser/refresh").status_code == 200


@pytest.mark.parametrize(
    "cookie",
    [None, "", "garbage", "a.b.c", "x" * 5000],
    ids=["none", "empty", "word", "dots", "huge"],
)
def test_browser_refresh_without_a_valid_cookie_401(browser, user, cookie):
    if cookie is not None:
        browser.cookies[refresh_cookie().name] = cookie
    before = database_snapshot()

    response = post(browser, "/auth/browser/refresh")

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid refresh token", "code": "invalid_refresh_token"}
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    assert database_snapshot() == before


def test_browser_refresh_refuses_an_access_token_in_the_cookie(browser, user):
    access = sign_in(browser, user).json()["access_token"]
    browser.cookies[refresh_cookie().name] = access
    assert post(browser, "/auth/browser/refresh").status_code == 401


def test_browser_refresh_of_a_revoked_session_401_and_drops_the_dead_cookie(browser, user):
    sign_in(browser, user)
    Session.objects.update(revoked_at="2026-01-01T00:00:00Z", revoked_reason="admin")
    response = post(browser, "/auth/browser/refresh")
    assert response.json()["code"] == "invalid_refresh_token"
    dropped = cookie_of(response)
    assert (dropped.value, dropped["max-age"], dropped["path"]) == ("", 0, "/")


# --- logout ----------------------------------------------------------------------------------


def test_browser_logout_ends_the_session_and_clears_the_cookie(browser, api_client, user):
    signed_in = sign_in(browser, user)
    access = signed_in.json()["access_token"]
    refresh = cookie_of(signed_in).value

    response = post(browser, "/auth/browser/logout")

    assert (response.status_code, response.json()) == (200, {"message": "Logout successful"})
    cleared = cookie_of(response)
    assert cleared.value == ""
    assert cleared["max-age"] == 0
    assert cleared["path"] == "/"
    assert cleared["httponly"] is True and cleared["samesite"] == "Strict" and cleared["secure"]
    session = Session.objects.get()
    assert session.revoked_reason == RevokeReason.LOGOUT
    assert BlacklistedToken.objects.filter(token__jti=claims(refresh)["jti"]).exists()
    todos = api_client.get("/todos", **bearer(access))
    assert (todos.status_code, todos.json()["error"]) == (401, LOGGED_OUT)
    browser.cookies[refresh_cookie().name] = refresh
    assert post(browser, "/auth/browser/refresh").status_code == 401


def test_browser_logout_needs_no_access_token_and_ends_only_its_session(browser, user, login):
    other = login(user)  # the same user's session on another device
    sign_in(browser, user)

    assert post(browser, "/auth/browser/logout").status_code == 200

    assert str(Session.objects.active().get().pk) == claims(other["access_token"])["sid"]


@pytest.mark.parametrize("cookie", [None, "garbage"], ids=["no-cookie", "bad-cookie"])
def test_browser_logout_without_a_live_cookie_still_clears_it(browser, user, cookie):
    if cookie is not None:
        browser.cookies[refresh_cookie().name] = cookie
    before = database_snapshot()

    response = post(browser, "/auth/browser/logout")

    assert response.status_code == 200
    assert cookie_of(response)["max-age"] == 0
    assert database_snapshot() == before


def test_browser_logout_twice_is_idempotent(browser, user):
    refresh = cookie_of(sign_in(browser, user)).value
    assert post(browser, "/auth/browser/logout").status_code == 200
    before = database_snapshot()

    browser.cookies[refresh_cookie().name] = refresh  # a cookie of a session already ended
    response = post(browser, "/auth/browser/logout")

    assert response.status_code == 200
    assert cookie_of(response)["max-age"] == 0
    assert database_snapshot() == before


# --- the CSRF check --------------------------------------------------------------------------

REFUSED_HEADERS = {
    "no-header": {"Origin": OWN_ORIGIN},
    "other-header-value": {"X-Requested-With": "XMLHttpRequest", "Origin": OWN_ORIGIN},
    "no-origin": {"X-Requested-With": "fetch"},
    "foreign-origin": {"X-Requested-With": "fetch", "Origin": "https://evil.example"},
    "null-origin": {"X-Requested-With": "fetch", "Origin": "null"},
    "other-scheme": {"X-Requested-With": "fetch", "Origin": "https://testserver"},
    "other-port": {"X-Requested-With": "fetch", "Origin": "http://testserver:8080"},
    "suffix": {"X-Requested-With": "fetch", "Origin": "http://testserver.evil.example"},
}


@pytest.mark.parametrize("headers", REFUSED_HEADERS.values(), ids=REFUSED_HEADERS)
@pytest.mark.parametrize("path", ROUTES)
def test_cookie_routes_refuse_cross_site_requests_and_change_nothing(browser, user, path, headers):
    sign_in(browser, user)
    body = {"username": user.username, "password": PASSWORD} if path.endswith("login") else None
    before = database_snapshot()

    response = post(browser, path, body, headers=headers)

    assert response.status_code == 403
    assert response.json() == {
        "error": "Cross-site request refused: send the X-Requested-With: fetch header "
        "from a page of a trusted origin",
        "code": "csrf_failed",
    }
    assert refresh_cookie().name not in response.cookies
    assert database_snapshot() == before


def test_csrf_check_runs_before_the_login_throttle(browser, user, settings):
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login": "1/minute"},
    }
    body = {"username": user.username, "password": PASSWORD}
    for _ in range(3):
        assert post(browser, "/auth/browser/login", body, headers={}).status_code == 403
    assert post(browser, "/auth/browser/login", body).status_code == 200


@pytest.mark.parametrize(
    ("trusted", "origin", "allowed"),
    [
        ("https://app.example.com", "https://app.example.com", True),
        ("https://*.example.com", "https://app.example.com", True),
        ("https://*.example.com", "http://app.example.com", False),
        ("https://*.example.com", "https://example.com.evil.test", False),
        ("https://app.example.com", "https://other.example.com", False),
    ],
)
def test_csrf_trusted_origins_admit_other_origins(
    browser, user, settings, trusted, origin, allowed
):
    settings.CSRF_TRUSTED_ORIGINS = [trusted]
    headers = {"X-Requested-With": "fetch", "Origin": origin}
    response = post(
        browser, "/auth/browser/login", {"username": user.username, "password": PASSWORD}, headers
    )
    assert response.status_code == (200 if allowed else 403)


def test_own_origin_follows_the_https_proxy_header(browser, user, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    body = {"username": user.username, "password": PASSWORD}
    headers = {"X-Requested-With": "fetch", "X-Forwarded-Proto": "https", "Host": "testserver"}
    assert (
        post(browser, "/auth/browser/login", body, headers | {"Origin": OWN_ORIGIN}).status_code
        == 403
    )
    assert (
        post(
            browser, "/auth/browser/login", body, headers | {"Origin": "https://testserver"}
        ).status_code
        == 200
    )


# --- the bearer API is untouched -------------------------------------------------------------


def test_json_login_sets_no_cookie_and_keeps_its_body(api_client, user):
    response = api_client.post(
        "/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert list(response.json()) == ["message", "access_token", "refresh_token"]
    assert not response.cookies


def test_json_refresh_reads_the_body_never_the_cookie(browser, user):
    sign_in(browser, user)
    response = browser.post("/auth/refresh", {}, content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (
        400,
        "Refresh token is required in request body",
    )


def test_cookie_mode_access_token_works_on_the_bearer_routes(browser, api_client, user):
    access = sign_in(browser, user).json()["access_token"]
    assert api_client.get("/todos", **bearer(access)).status_code == 200
    sessions = api_client.get("/auth/sessions", **bearer(access)).json()
    assert [session["current"] for session in sessions] == [True]
