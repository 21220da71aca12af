"""Small composable fixtures: users, clients, and signed-in clients."""

import time

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from tests.redis_process import RedisProcess

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _clear_cache():
    """The cache and the guard's in-process counts: every test starts from zero."""
    from accounts.windows import memory

    cache.clear()
    memory.clear()
    yield
    cache.clear()
    memory.clear()


@pytest.fixture(scope="session")
def redis_server():
    """The URL of a redis-server this test session starts on a free loopback port, and stops.

    Never the machine's shared Redis: tests empty it. Skipped where redis-server is
    missing, except in CI, where it must run.
    """
    server = RedisProcess().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(params=["memory", "redis"])
def store(request, settings):
    """The guard's counts in this process's memory, or in Redis (the session's own server)."""
    if request.param == "redis":
        from redis import Redis

        url = request.getfixturevalue("redis_server")
        Redis.from_url(url).flushdb()
        settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": url}
    else:
        settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": ""}
    return request.param


# Keys made once per test run: an RSA key takes tens of milliseconds to generate, and
# every test that signs a token would otherwise make its own.
_KEY_POOL: dict[str, list] = {}


@pytest.fixture(autouse=True)
def _signing_keys(monkeypatch):
    """Each test starts with an empty key ring in this process; new keys come from a pool."""
    from accounts import keys
    from accounts.keyring import key_ring

    generate, taken = keys.generate, {}

    def pooled(algorithm: str):
        pool = _KEY_POOL.setdefault(algorithm, [])
        index = taken[algorithm] = taken.get(algorithm, -1) + 1
        while len(pool) <= index:
            pool.append(generate(algorithm))
        return pool[index]

    monkeypatch.setattr(keys, "generate", pooled)
    key_ring.clear()
    yield
    key_ring.clear()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def make_user(db, django_user_model):
    """Create users with the shared test password."""

    def make(username: str = "alice", **fields):
        return django_user_model.objects.create_user(username=username, password=PASSWORD, **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def other_user(make_user):
    return make_user("bob")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def login(api_client):
    """Log `user` in through the API and return the response body (both tokens)."""

    def do_login(user, password: str = PASSWORD) -> dict:
        response = api_client.post(
            "/auth/login", {"username": user.username, "password": password}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()

    return do_login


@pytest.fixture
def tokens(user, login) -> dict:
    """One signed-in session of `user`."""
    return login(user)


def bearer(access_token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {access_token}"}


@pytest.fixture
def auth_client(tokens) -> APIClient:
    """A client that sends `user`'s access token."""
    client = APIClient()
    client.credentials(**bearer(tokens["access_token"]))
    return client


@pytest.fixture
def postgres_only():
    """Skip on SQLite, where select_for_update does nothing and races differ."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


def database_snapshot() -> dict:
    """Every row the API can write, in full, so any change shows."""
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    from accounts.models import SecurityEvent, Session
    from todos.models import Todo

    return {
        "users": list(get_user_model().objects.order_by("pk").values()),
        "sessions": list(Session.objects.order_by("pk").values()),
        "outstanding": list(OutstandingToken.objects.order_by("pk").values()),
        "blacklisted": list(BlacklistedToken.objects.order_by("pk").values()),
        "todos": list(Todo.objects.order_by("pk").values()),
        "events": list(SecurityEvent.objects.order_by("pk").values()),
    }


@pytest.fixture
def receivers():
    """Three push receivers on loopback, registered as resource servers (tests.pushing)."""
    from tests.pushing import registered_receivers

    made = registered_receivers()
    yield made
    for receiver in made:
        receiver.close()


def wait_until(condition, timeout: float = 10) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
