"""Concurrent refreshes of one token: one rotation, the same new pair for all, never a 5xx."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import Session


def refresh_in_parallel(token: str, count: int) -> list:
    """Fire `count` refreshes of one token at once, each on its own thread and connection."""
    barrier = threading.Barrier(count)

    def one(_):
        try:
            barrier.wait(timeout=10)
            response = APIClient().post("/auth/refresh", {"refresh_token": token}, format="json")
            assert "database is locked" not in response.content.decode()
            return response.status_code, response.json()
        finally:
            connections.close_all()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.fixture
def race_tokens(transactional_db, make_user, login):
    return login(make_user("racer"))


def assert_one_pair_for_all(answers: list, token_count_before: int) -> dict:
    """Every refresh got 200 and the very same pair; one rotation happened, no fork."""
    assert [status for status, _ in answers] == [200] * len(answers), answers
    pairs = {(body["access_token"], body["refresh_token"]) for _, body in answers}
    assert len(pairs) == 1
    assert OutstandingToken.objects.count() == token_count_before + 1
    session = Session.objects.get()
    assert session.revoked_at is None, session.revoked_reason
    return answers[0][1]


def assert_session_rotates_on(pair: dict) -> None:
    response = APIClient().post(
        "/auth/refresh", {"refresh_token": pair["refresh_token"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["refresh_token"] != pair["refresh_token"]


def test_fifty_parallel_refreshes_get_one_pair_on_postgres(postgres_only, race_tokens):
    assert connection.vendor == "postgresql"
    before = OutstandingToken.objects.count()
    pair = assert_one_pair_for_all(refresh_in_parallel(race_tokens["refresh_token"], 50), before)
    assert_session_rotates_on(pair)


def test_sixteen_parallel_refreshes_get_one_pair_on_sqlite(race_tokens):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite variant of the race")
    before = OutstandingToken.objects.count()
    pair = assert_one_pair_for_all(refresh_in_parallel(race_tokens["refresh_token"], 16), before)
    assert_session_rotates_on(pair)


def test_strict_mode_burst_has_one_winner_and_ends_the_session_on_postgres(
    postgres_only, race_tokens, settings
):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REFRESH_REUSE_GRACE_SECONDS": 0}
    answers = refresh_in_parallel(race_tokens["refresh_token"], 16)
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == 1 and statuses.count(401) == 15, statuses
    # The losers presented a token that had just been rotated out, which strict mode
    # cannot tell from theft, so the family ends (RFC 9700 §4.14.2). It never forks.
    session = Session.objects.get()
    assert session.revoked_reason == "reuse_detected"
    assert session.token_links.count() == 2


def test_a_refresh_locks_its_session_row_and_not_the_user_row_on_postgres(
    postgres_only, race_tokens, monkeypatch
):
    """While a refresh decides, its session row is locked; the user row stays free."""
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError, transaction

    from accounts import refresh

    deciding, release = threading.Event(), threading.Event()
    decide = refresh._refusal

    def held(*args):
        verdict = decide(*args)
        deciding.set()
        release.wait(timeout=10)
        return verdict

    monkeypatch.setattr(refresh, "_refusal", held)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(refresh_in_parallel, race_tokens["refresh_token"], 1)
        assert deciding.wait(timeout=10)
        try:
            session = Session.objects.get()
            with transaction.atomic():
                user = (
                    get_user_model().objects.select_for_update(nowait=True).get(pk=session.user_id)
                )
                assert user.username == "racer"
            with pytest.raises(DatabaseError, match="could not obtain lock"), transaction.atomic():
                Session.objects.select_for_update(nowait=True).get(pk=session.pk)
        finally:
            release.set()
        [(status, _)] = pending.result(timeout=10)
    assert status == 200
