"""Concurrent refreshes of one token: exactly one wins, the rest get 401, never a 5xx."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts.models import Session

PARALLEL = 16


def refresh_in_parallel(token: str, count: int = PARALLEL) -> list[int]:
    """Fire `count` refreshes of one token at once, each on its own thread and connection."""
    barrier = threading.Barrier(count)

    def one(_):
        try:
            barrier.wait(timeout=10)
            response = APIClient().post("/auth/refresh", {"refresh_token": token}, format="json")
            assert "database is locked" not in response.content.decode()
            return response.status_code
        finally:
            connections.close_all()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.fixture
def race_tokens(transactional_db, make_user, login):
    return login(make_user("racer"))


def assert_exactly_one_winner(statuses: list[int]) -> None:
    assert statuses.count(200) == 1, statuses
    assert statuses.count(401) == len(statuses) - 1, statuses


def test_parallel_refreshes_one_winner_on_postgres(postgres_only, race_tokens):
    assert connection.vendor == "postgresql"
    assert_exactly_one_winner(refresh_in_parallel(race_tokens["refresh_token"]))
    # Strict mode: the losers presented a token that had just been rotated out, which is
    # indistinguishable from theft, so the family ends (RFC 9700 §4.14.2).
    assert Session.objects.get().revoked_reason == "reuse_detected"


def test_parallel_refreshes_with_grace_keep_session_on_postgres(
    postgres_only, race_tokens, settings
):
    settings.REFRESH_REUSE_GRACE_SECONDS = 60
    assert_exactly_one_winner(refresh_in_parallel(race_tokens["refresh_token"]))
    session = Session.objects.get()
    assert session.revoked_at is None, session.revoked_reason
    assert session.token_links.count() == 2  # one rotation, no forked family


def test_parallel_refreshes_one_winner_on_sqlite(race_tokens):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite variant of the race")
    assert_exactly_one_winner(refresh_in_parallel(race_tokens["refresh_token"], count=8))
    assert Session.objects.get().token_links.count() == 2
