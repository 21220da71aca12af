"""project.middleware: every response carries the security headers; no route answers 500."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import PASSWORD, database_snapshot
from todos.views import TodoViewSet

# What SecurityMiddleware, CSPMiddleware and XFrameOptionsMiddleware add to a normal response.
SECURITY_HEADERS = (
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Strict-Transport-Security",
    "Content-Security-Policy",
)


def security_headers(response) -> dict:
    return {name: response.get(name) for name in SECURITY_HEADERS}


@pytest.fixture
def normal_headers(client, db) -> dict:
    """The security headers of a 200, over TLS (HSTS is sent only there)."""
    headers = security_headers(client.get("/healthz", secure=True))
    assert all(headers.values()), headers
    return headers


def explode(*args, **kwargs):
    raise RuntimeError("boom")


ERRORS = {
    "404 unknown route": lambda c: c.get("/nope", secure=True),
    "405 wrong method": lambda c: c.post("/", secure=True),
    "413 body too large": lambda c: c.post(
        "/auth/login", "{}", content_type="application/json", CONTENT_LENGTH="99999999", secure=True
    ),
    "411 chunked body": lambda c: c.post(
        "/auth/login",
        "{}",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        secure=True,
    ),
    "400 malformed JSON": lambda c: c.post(
        "/auth/login", "{", content_type="application/json", secure=True
    ),
    "401 no token": lambda c: c.get("/todos", secure=True),
    "405 OPTIONS on the docs page": lambda c: c.options("/api/docs/", secure=True),
    "400 disallowed host": lambda c: c.get("/todos", HTTP_HOST="evil.example", secure=True),
}


@pytest.mark.parametrize("request_", ERRORS.values(), ids=ERRORS.keys())
def test_error_responses_carry_the_security_headers_of_a_normal_one(normal_headers, request_):
    response = request_(Client(raise_request_exception=False))
    assert response.status_code >= 400
    assert security_headers(response) == normal_headers


def test_an_unhandled_error_carries_the_security_headers(normal_headers, auth_client, monkeypatch):
    monkeypatch.setattr(TodoViewSet, "list", explode)
    auth_client.raise_request_exception = False
    response = auth_client.get("/todos", secure=True)
    assert response.status_code == 500
    assert security_headers(response) == normal_headers


def test_an_error_outside_the_views_carries_the_security_headers(normal_headers, monkeypatch):
    from django.contrib.sessions.middleware import SessionMiddleware

    monkeypatch.setattr(SessionMiddleware, "process_request", explode)
    response = Client(raise_request_exception=False).get("/healthz", secure=True)
    assert response.status_code == 500
    assert security_headers(response) == normal_headers


def test_no_hsts_over_plain_http(client, db):
    assert "Strict-Transport-Security" not in client.get("/nope")


def every_route() -> list[str]:
    """One concrete path for each route the project serves, parameters filled in."""
    fillers = {"int": "1", "uuid": "00000000-0000-0000-0000-000000000000", "path": "1/x"}

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = str(pattern.pattern)
            if route.startswith("^"):
                # A regex route (the admin's app index): an example the regex accepts.
                route = re.sub(r"\(\?P<\w+>([^)]*)\)", lambda m: m.group(1).split("|")[0], route)
                route = route.strip("^$").replace("\\", "")
            route = re.sub(r"<(?:(\w+):)?\w+>", lambda m: fillers.get(m.group(1) or "", "x"), route)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern):
                yield prefix + route

    return sorted(set(walk(get_resolver().url_patterns, "/")))


ROUTES = every_route()


def test_every_route_is_covered():
    assert {"/todos", "/auth/login", "/api/docs/", "/admin/login/", "/healthz"} <= set(ROUTES)
    assert any(route.startswith("/admin/accounts/session/") for route in ROUTES)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "superuser"])
def test_options_on_any_route_never_500(db, admin_user, signed_in):
    client = Client(raise_request_exception=False)
    if signed_in:
        client.force_login(admin_user)
    for route in ROUTES:
        response = client.options(route)
        assert response.status_code < 500, (route, response.status_code)
        if not route.startswith("/admin/") and response.status_code >= 400:
            assert response["Content-Type"].startswith("application/json"), route


@pytest.fixture
def redis_away(monkeypatch):
    """Every password check of the admin's forms finds Redis unreachable."""

    def unreachable(**kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr("accounts.sites.password_check", unreachable)


def assert_unavailable_page(response):
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"]
    page = response.content.decode()
    assert "briefly unavailable" in page and "Nothing was changed" in page
    assert "Traceback" not in page and "Server Error" not in page


def test_admin_login_while_redis_is_away_a_short_503_page(db, admin_user, redis_away):
    before = database_snapshot()
    response = Client(raise_request_exception=False).post(
        "/admin/login/", {"username": admin_user.username, "password": "password"}
    )
    assert_unavailable_page(response)
    assert database_snapshot() == before


def test_admin_password_change_while_redis_is_away_a_short_503_page(db, admin_client, redis_away):
    user = get_user_model().objects.get(username="admin")
    before = database_snapshot()
    admin_client.raise_request_exception = False
    response = admin_client.post(
        "/admin/password_change/",
        {"old_password": "password", "new_password1": PASSWORD, "new_password2": PASSWORD},
    )
    assert_unavailable_page(response)
    assert database_snapshot() == before
    user.refresh_from_db()
    assert user.check_password("password")


def test_a_page_that_loses_the_database_503_json(client, db, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("todos.web.render", unavailable)
    response = Client(raise_request_exception=False).get("/")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"]


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/admin/accounts/session/", {"kind": "\x00"}),
        ("get", "/admin/accounts/session/", {"revoked_reason": "\x00"}),
        ("get", "/admin/accounts/securityevent/", {"kind": "\x00"}),
        (
            "get",
            "/admin/autocomplete/",
            {"app_label": "auth", "model_name": "user", "field_name": "groups", "term": "\x00"},
        ),
        (
            "post",
            "/admin/accounts/session/",
            {"action": "revoke_selected", "_selected_action": "\x00"},
        ),
    ],
)
def test_a_nul_in_an_admin_request_400_not_500(admin_client, method, path, data):
    """The second review's admin 500s (PostgreSQL text cannot hold a NUL)."""
    admin_client.raise_request_exception = False
    before = database_snapshot()
    response = getattr(admin_client, method)(path, data)
    assert response.status_code == 400
    assert "no field can hold" in response.content.decode()
    assert database_snapshot() == before


@pytest.mark.parametrize(
    ("changelist", "action", "selected"),
    [
        ("/admin/accounts/session/", "revoke_selected", "notauuid"),
        ("/admin/auth/user/", "revoke_all_sessions", "abc"),
        ("/admin/auth/user/", "deactivate_users", "1.5"),
        ("/admin/token_blacklist/outstandingtoken/", "revoke_sessions", "x"),
    ],
)
def test_an_action_on_ids_no_row_can_have_says_so(
    admin_client, tokens, changelist, action, selected
):
    admin_client.raise_request_exception = False
    before = database_snapshot()
    response = admin_client.post(
        changelist, {"action": action, "_selected_action": [selected]}, follow=True
    )
    assert response.status_code == 200
    assert "The selection is not valid." in response.content.decode()
    assert database_snapshot() == before
