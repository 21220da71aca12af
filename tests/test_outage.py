"""Database and cache outages: 503 JSON while they are away, recovery by itself, no lost write."""

import threading
import time

import pytest
from django.db import OperationalError, connection

from accounts.authentication import SessionJWTAuthentication
from accounts.models import Session
from tests.appservers import (
    REQUEST_TIMEOUT,
    START_TIMEOUT,
    Server,
    TcpProxy,
    pytest_database_url,
)
from tests.reporting import report
from todos.models import Todo

# Bounds that keep the test short and let it stop by itself.
RECOVERY_TIMEOUT = 15
OUTAGE_SECONDS = 2.0


class Writer(threading.Thread):
    """Create todos one after another until stopped; remember every acknowledged one."""

    def __init__(self, server: Server, token: str, limit: int = 400) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.limit = server, token, limit
        self.acknowledged: list[int] = []
        self.statuses: list[tuple[int, str, object]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        for number in range(self.limit):
            if self.stopped.is_set():
                return
            try:
                status, content_type, body = self.server.call(
                    "POST", "/todos", {"title": f"write {number}"}, self.token
                )
            except OSError as exc:
                self.statuses.append((0, "", repr(exc)))
                continue
            self.statuses.append((status, content_type, body))
            if status == 201:
                self.acknowledged.append(body["id"])
            time.sleep(0.01)


@pytest.fixture
def proxy():
    """A TCP proxy in front of the test database's PostgreSQL server."""
    target = (
        connection.settings_dict["HOST"] or "127.0.0.1",
        int(connection.settings_dict["PORT"]),
    )
    tcp_proxy = TcpProxy(target)
    yield tcp_proxy
    tcp_proxy.close()


@pytest.fixture
def server(proxy, tmp_path):
    """gunicorn whose DATABASE_URL is the pytest-created test database, through the proxy."""
    url = pytest_database_url(proxy.port).replace(
        connection.settings_dict["HOST"] or "127.0.0.1", "127.0.0.1"
    )
    url = pytest_database_url(proxy.port, host="127.0.0.1")
    app_server = Server(url, tmp_path / "gunicorn.log", DATABASE_CONNECT_TIMEOUT="2")
    try:
        app_server.wait_until_healthy(START_TIMEOUT)
        yield app_server
    finally:
        app_server.stop()


def assert_unavailable(response) -> None:
    status, content_type, body = response
    assert (status, content_type) == (503, "application/json"), response
    assert body["code"] == "service_unavailable" and body["error"]


def test_database_outage_503_then_recovers_without_losing_writes(
    postgres_only, transactional_db, user, password, proxy, server, request
):
    status, _, tokens = server.call(
        "POST", "/auth/login", {"username": user.username, "password": password}
    )
    assert status == 200, tokens
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    pid = server.process.pid
    writer = Writer(server, access)
    writer.start()
    time.sleep(0.5)

    proxy.cut()
    during = []
    deadline = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < deadline:
        during += [
            server.call("GET", "/healthz"),
            server.call("GET", "/todos", token=access),
            server.call("POST", "/todos", {"title": "during"}, access),
            server.call("POST", "/auth/login", {"username": user.username, "password": password}),
            server.call("POST", "/auth/refresh", {"refresh_token": refresh}),
        ]
    for response in during:
        assert_unavailable(response)
    proxy.restore()

    recovered_in = server.wait_until_healthy(RECOVERY_TIMEOUT)
    time.sleep(0.5)
    writer.stopped.set()
    writer.join(REQUEST_TIMEOUT)
    status, _, listed = server.call("GET", "/todos", token=access)

    assert status == 200, "the session made before the outage still works"
    assert set(writer.acknowledged) <= {todo["id"] for todo in listed}
    assert server.process.pid == pid and server.process.poll() is None
    statuses = [status for status, _, _ in writer.statuses]
    assert set(statuses) <= {201, 503}, writer.statuses
    for status, content_type, body in writer.statuses:
        if status == 503:
            assert_unavailable((status, content_type, body))
    assert statuses.count(503) > 0, "the writer never saw the outage"
    assert statuses[-1] == 201, "the writer never saw the recovery"
    stored = set(Todo.objects.filter(pk__in=writer.acknowledged).values_list("pk", flat=True))
    assert stored == set(writer.acknowledged)
    report(
        request,
        f"outage: {len(during)} requests while PostgreSQL was cut, all 503 service_unavailable; "
        f"writer: {statuses.count(201)} todos acknowledged (201) and all {len(stored)} stored, "
        f"{statuses.count(503)} refused (503); same server recovered in {recovered_in:.2f}s",
    )


def test_database_error_during_authentication_503_json(auth_client, monkeypatch):
    def unavailable(self, token):
        raise OperationalError("connection refused")

    monkeypatch.setattr(SessionJWTAuthentication, "get_session", unavailable)
    response = auth_client.get("/todos")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"]


def test_redis_outage_503_json_on_login(api_client, user, password, settings):
    """The guard's counts live in Redis when REDIS_URL is set: unreachable, a login is a 503."""
    # Nothing listens on port 1: every call fails to connect.
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": "redis://127.0.0.1:1/0"}
    response = api_client.post(
        "/auth/login", {"username": user.username, "password": password}, format="json"
    )
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


def test_redis_outage_still_lets_a_token_end_its_session(api_client, tokens, settings):
    """RFC 7009 revocation is counted in Redis too, but fails open: holding a token is
    the right to end its session, and an outage must not take that away."""
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": "redis://127.0.0.1:1/0"}
    response = api_client.post(
        "/auth/revoke",
        f"token={tokens['refresh_token']}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert Session.objects.get().revoked_at is not None


def test_redis_out_of_memory_is_a_503_not_a_500(api_client, user, password, settings, monkeypatch):
    from redis.exceptions import OutOfMemoryError

    def full(*windows):
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'")

    monkeypatch.setattr("accounts.guard.claim", full)
    response = api_client.post(
        "/auth/login", {"username": user.username, "password": password}, format="json"
    )
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
