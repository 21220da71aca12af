"""The exception handler: every error is {"error", "code"} JSON, never HTML."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import Client

from todos.models import Todo
from todos.views import TodoViewSet


def assert_error(response, status: int, code: str | None = None, error: str | None = None):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "code"}
    assert "detail" not in body
    if code:
        assert body["code"] == code
    if error:
        assert body["error"] == error
    return body


@pytest.mark.parametrize("path", ["/nope", "/auth", "/auth/nope", "/todos/1/extra", "/api/nope"])
def test_unknown_route_404_json(client, db, path):
    assert_error(client.get(path), 404, "not_found", "Not found")


def test_unknown_route_404_json_with_debug_on(client, db, settings):
    settings.DEBUG = True
    assert_error(client.post("/definitely/not/here"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/auth/login"), ("put", "/auth/signup"), ("delete", "/auth/refresh")],
)
def test_wrong_method_405_json(client, db, method, path):
    assert_error(getattr(client, method)(path), 405, "method_not_allowed")


@pytest.mark.parametrize(("method", "path"), [("put", "/todos"), ("get", "/auth/logout")])
def test_wrong_method_on_protected_route_405(auth_client, method, path):
    response = getattr(auth_client, method)(path, {}, format="json")
    assert_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/auth/login", "/auth/signup", "/auth/refresh"])
def test_non_json_body_415(client, db, path):
    response = client.post(
        path, "username=a&password=b", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "unsupported_media_type", "Request must be JSON")


def test_non_json_todo_415(auth_client):
    response = auth_client.post("/todos", "title=x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")
    assert not Todo.objects.exists()


def test_malformed_json_400(client, db):
    response = client.post("/auth/login", "{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_oversized_body_413(auth_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"title": "' + "x" * 2000 + '"}'
    response = auth_client.post("/todos", body, content_type="application/json")
    assert_error(response, 413, "request_too_large")
    assert not Todo.objects.exists()


def test_unhandled_error_500_json_without_details(auth_client, monkeypatch):
    def explode(self, request, *args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(TodoViewSet, "list", explode)
    # The test client re-raises what got_request_exception reports; a real one gets the 500.
    auth_client.raise_request_exception = False
    body = assert_error(auth_client.get("/todos"), 500, "server_error", "Internal server error")
    assert "secret" not in str(body)


def test_database_unavailable_503_json(auth_client, monkeypatch):
    def unavailable(self, request, *args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(TodoViewSet, "list", unavailable)
    response = auth_client.get("/todos")
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"]


def test_disallowed_host_400_json(db):
    response = Client(HTTP_HOST="evil.example").get("/todos")
    assert_error(response, 400, "bad_request")


def test_disallowed_host_400_json_with_debug_on(db, settings):
    """`make run` has DEBUG on: Django's answer would be its HTML debug page."""
    settings.DEBUG = True
    for path in ("/todos", "/auth/login", "/nope"):
        response = Client(HTTP_HOST="evil.example").get(path)
        assert_error(response, 400, "bad_request")


def test_error_outside_the_views_500_json_with_debug_on(db, settings, monkeypatch):
    """An error Django answers itself (here in a middleware) is JSON, DEBUG on or off."""
    from django.contrib.sessions.middleware import SessionMiddleware

    def explode(self, request):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(SessionMiddleware, "process_request", explode)
    client = Client(raise_request_exception=False)
    for debug in (True, False):
        settings.DEBUG = debug
        body = assert_error(client.get("/healthz"), 500, "server_error")
        assert "secret" not in str(body)


def test_admin_errors_stay_html(admin_client):
    response = admin_client.get("/admin/no-such-app/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_400_without_a_traceback(client, db, depth, caplog):
    body = '{"username": ' + "[" * depth + "]" * depth + ', "password": "x"}'
    response = client.post("/auth/login", body, content_type="application/json")
    assert_error(response, 400, "json_too_deep")
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def test_a_chunked_body_411_instead_of_arriving_empty(client, db):
    """Django reads a body by its Content-Length; a chunked one would look like no body."""
    response = client.post(
        "/auth/login",
        '{"username": "a", "password": "b"}',
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert_error(response, 411, "length_required")


def test_a_post_to_the_web_client_page_405_json(client, db):
    assert_error(client.post("/"), 405, "method_not_allowed")


def test_a_disallowed_host_is_no_logged_error():
    """Django logs a bad Host at ERROR, with its traceback; the settings drop those lines."""
    import logging

    logger = logging.getLogger("django.security.DisallowedHost")
    ours = [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]
    assert logger.propagate is False
    assert ours and all(isinstance(handler, logging.NullHandler) for handler in ours)


def test_an_unmigrated_database_503_migrations_pending_naming_the_fix(tmp_path):
    """`runserver` before `migrate`: /healthz and the login say what to do, in the log too."""
    database = tmp_path / "fresh.sqlite3"
    code = (
        "import django, json; django.setup(); "
        "from django.test import Client; c = Client(raise_request_exception=False); "
        "h = c.get('/healthz'); "
        "l = c.post('/auth/login', {'username': 'a', 'password': 'b'}, "
        "content_type='application/json'); "
        "print(json.dumps([h.status_code, h.json(), l.status_code, l.json()]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(settings.BASE_DIR),
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "project.development",
            "DATABASE_URL": f"sqlite:///{database}",
            "ALLOWED_HOSTS": "testserver",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    health_status, health, login_status, login = json.loads(result.stdout.splitlines()[-1])
    for status, body in ((health_status, health), (login_status, login)):
        assert status == 503
        assert body["code"] == "migrations_pending" and "manage.py migrate" in body["error"]
    assert (
        "The database is not migrated" in result.stderr
        and "run `manage.py migrate`" in result.stderr
    )


def test_manage_py_runs_in_development_on_a_fresh_clone():
    """No DEBUG, no secrets in the environment: manage.py's settings are development's."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(settings.BASE_DIR),
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_head_on_the_health_check_200(client, db):
    """Load balancers that probe with HEAD."""
    assert client.head("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/auth/browser/logout", "/auth/login", "/auth/introspect"])
def test_a_method_a_route_does_not_serve_405_before_any_check(client, db, path):
    response = client.generic("TRACE", path, HTTP_X_REQUESTED_WITH="fetch")
    assert_error(response, 405, "method_not_allowed")
