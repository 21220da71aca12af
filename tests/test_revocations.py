"""Authentication without a query: the revocation list in Redis (accounts.revocations).

Each test runs a redis-server of its own, so it can stop, restart and flush it.
"""

import logging
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis import Redis

from accounts import revocation_window, revocations
from accounts.authentication import session_of, user_of
from accounts.models import RevokeReason, Session
from accounts.revocations import revocation_list
from accounts.signing import token_backend
from accounts.tokens import SESSION_EXPIRY_CLAIM
from tests.conftest import bearer
from tests.ending import REASONS, end_by
from tests.redis_process import RedisProcess
from todos.models import Todo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_process():
    server = RedisProcess()
    yield server.start()
    server.close()


@pytest.fixture
def listed(redis_process, settings, monkeypatch):
    """The list on, on this test's Redis; believed for a minute, so it is not renewed midway
    unless a test says so. Returns a client of that Redis."""
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "REDIS_URL": redis_process.url,
        "REVOCATION_LIST_SECONDS": 60,
    }
    # A failure makes a process leave Redis alone for a second; tests move on at once.
    monkeypatch.setattr(revocations, "BREAK_SECONDS", 0)
    return Redis.from_url(redis_process.url)


def get_todos(api_client, access: str):
    return api_client.get("/todos", **bearer(access))


def queries_of(api_client, access: str) -> tuple[int, list[str]]:
    """GET /todos with `access`: its status and the SQL it ran."""
    with CaptureQueriesContext(connection) as captured:
        response = get_todos(api_client, access)
    return response.status_code, [query["sql"] for query in captured.captured_queries]


def epoch_key() -> str:
    return revocation_list().epoch_key


def marker_key(sid: str) -> str:
    return revocation_list().marker(sid)


def sid_of(pair: dict) -> str:
    return token_backend.decode(pair["access_token"])["sid"]


def test_get_todos_runs_only_the_todo_query_once_the_list_is_warm(listed, api_client, user, login):
    pair = login(user)
    Todo.objects.create(owner=user, title="one")
    status, cold = queries_of(api_client, pair["access_token"])  # renews the list: warm now
    assert status == 200 and any("accounts_session" in sql for sql in cold)
    assert listed.exists(epoch_key())

    status, warm = queries_of(api_client, pair["access_token"])
    assert status == 200
    [only] = warm
    assert "todos_todo" in only and "accounts_session" not in only
    assert get_todos(api_client, pair["access_token"]).json()[0]["title"] == "one"


def test_without_the_list_every_request_reads_its_session(settings, api_client, user, login):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": ""}
    pair = login(user)
    for _ in range(2):
        status, sql = queries_of(api_client, pair["access_token"])
        assert status == 200 and len(sql) == 2 and "accounts_session" in sql[0]


def test_the_user_and_session_a_vouched_request_gets_load_the_rest_lazily(user, login):
    login(user)
    session = Session.objects.get()
    with CaptureQueriesContext(connection) as captured:
        lazy_user = user_of(str(user.pk))
        lazy_session = session_of(session.pk, lazy_user)
        assert (lazy_user.pk, lazy_user.is_authenticated) == (user.pk, True)
        assert (lazy_session.pk, lazy_session.user_id) == (session.pk, user.pk)
    assert captured.captured_queries == []
    with CaptureQueriesContext(connection) as captured:
        assert lazy_user.username == user.username
    assert len(captured.captured_queries) == 1


def test_a_logout_is_refused_on_the_very_next_request(listed, api_client, user, login):
    pair = login(user)
    assert get_todos(api_client, pair["access_token"]).status_code == 200
    response = api_client.post(
        "/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert response.status_code == 200
    assert listed.exists(marker_key(sid_of(pair)))  # written before the 200
    refused = get_todos(api_client, pair["access_token"])
    assert refused.status_code == 401 and refused.json()["code"] == "session_revoked"


def test_the_list_covers_every_revoke_reason():
    assert set(REASONS) == set(RevokeReason.values)


@pytest.mark.parametrize("reason", REASONS)
def test_every_way_a_session_ends_marks_it_and_its_token_is_refused(
    listed, api_client, user, tokens, admin_client, settings, reason
):
    access = tokens["access_token"]
    get_todos(api_client, access)  # renews the list
    status, sql = queries_of(api_client, access)
    assert status == 200 and len(sql) == 1  # vouched for: the list decides, not the database
    end_by(reason, api_client, tokens, user, admin_client, settings)
    assert listed.exists(marker_key(sid_of(tokens))), reason
    assert get_todos(api_client, access).status_code == 401


def test_a_flush_is_cold_and_the_next_renewal_replays_every_ended_session(
    listed, api_client, user, login
):
    alive, ended = login(user), login(user)
    get_todos(api_client, alive["access_token"])
    Session.objects.filter(pk=sid_of(ended)).revoke(RevokeReason.LOGOUT)
    listed.flushall()

    # Cold: the database decides (and the request renews the list).
    assert get_todos(api_client, ended["access_token"]).status_code == 401
    assert listed.exists(epoch_key()) and listed.exists(marker_key(sid_of(ended)))
    assert get_todos(api_client, ended["access_token"]).status_code == 401
    status, sql = queries_of(api_client, alive["access_token"])
    assert status == 200 and len(sql) == 1


def test_a_flush_during_a_renewal_leaves_the_list_cold(
    listed, api_client, user, login, monkeypatch
):
    pair = login(user)
    replay = revocation_window.ended_since

    def flushed_meanwhile(since):
        ended = replay(since)
        listed.flushall()  # the lock goes with it
        return ended

    monkeypatch.setattr(revocation_window, "ended_since", flushed_meanwhile)
    assert get_todos(api_client, pair["access_token"]).status_code == 200
    assert not listed.exists(epoch_key())  # no epoch over markers that may be gone


def test_an_old_epoch_is_renewed_while_it_is_still_believed(
    listed, api_client, user, login, settings
):
    pair = login(user)
    get_todos(api_client, pair["access_token"])
    run, _, began = listed.get(epoch_key()).partition(b":")
    aged = int(began) - 31_000  # past half its 60 s
    listed.set(epoch_key(), run + b":" + str(aged).encode(), keepttl=True)
    status, sql = queries_of(api_client, pair["access_token"])
    # Still believed (no session query), and renewed: a replay of the record.
    assert status == 200 and not any("accounts_session" in query for query in sql)
    assert any("accounts_securityevent" in query for query in sql)
    assert int(listed.get(epoch_key()).partition(b":")[2]) > aged


def test_an_epoch_from_another_redis_run_vouches_for_nothing(listed, api_client, user, login):
    """A Redis restarted from a snapshot (or a replica promoted) may hold an epoch over
    markers it lost: an epoch is believed only in the run that wrote it."""
    alive, ended = login(user), login(user)
    get_todos(api_client, alive["access_token"])
    run, _, began = listed.get(epoch_key()).partition(b":")
    assert run == listed.info("server")["run_id"].encode()
    Session.objects.filter(pk=sid_of(ended)).revoke(RevokeReason.LOGOUT)
    listed.delete(marker_key(sid_of(ended)))  # as a restart from an older snapshot would
    listed.set(epoch_key(), b"another-run:" + began, keepttl=True)
    assert get_todos(api_client, ended["access_token"]).status_code == 401
    # The request renewed it in this run, replaying the record: the marker is back.
    assert listed.get(epoch_key()).partition(b":")[0] == run
    assert listed.exists(marker_key(sid_of(ended)))


def test_a_token_that_outlives_todays_access_lifetime_is_checked_in_the_database(
    listed, api_client, user, login, settings
):
    pair = login(user)
    get_todos(api_client, pair["access_token"])
    assert len(queries_of(api_client, pair["access_token"])[1]) == 1
    # ACCESS_TOKEN_LIFETIME shortened: markers now live less than this token does.
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(minutes=2)}
    status, sql = queries_of(api_client, pair["access_token"])
    assert status == 200 and "accounts_session" in sql[0]


def test_redis_stopped_then_back_empty_never_lets_an_ended_session_in(
    listed, redis_process, api_client, user, login, settings
):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REVOCATION_LIST_SECONDS": 0.3}
    alive, ended = login(user), login(user)
    get_todos(api_client, alive["access_token"])
    redis_process.stop()

    # The API keeps answering, by the one query.
    status, sql = queries_of(api_client, alive["access_token"])
    assert status == 200 and "accounts_session" in sql[0]
    start = time.monotonic()
    response = api_client.post(
        "/auth/logout",
        {"refresh_token": ended["refresh_token"]},
        format="json",
        **bearer(ended["access_token"]),
    )
    # Unmarked, the logout waited until no epoch without its marker could exist.
    assert response.status_code == 200 and time.monotonic() - start >= 0.3
    assert get_todos(api_client, ended["access_token"]).status_code == 401

    redis_process.start()  # empty
    assert get_todos(api_client, ended["access_token"]).status_code == 401
    assert get_todos(api_client, alive["access_token"]).status_code == 200
    assert listed.exists(epoch_key()) and listed.exists(marker_key(sid_of(ended)))
    assert get_todos(api_client, ended["access_token"]).status_code == 401


def test_redis_back_from_a_snapshot_never_lets_an_ended_session_in(
    listed, settings, api_client, user, other_user, login
):
    snapshotting = RedisProcess(persist=True).start()
    try:
        settings.ACCOUNTS = {
            **settings.ACCOUNTS,
            "REDIS_URL": snapshotting.url,
            "REVOCATION_LIST_SECONDS": 0.5,
        }
        alive, ended = login(other_user), login(user)
        get_todos(api_client, alive["access_token"])
        assert Redis.from_url(snapshotting.url).exists(epoch_key())
        snapshotting.stop()  # saves the snapshot: the epoch is in it
        response = api_client.post("/auth/logout-all", **bearer(ended["access_token"]))
        assert response.status_code == 200
        snapshotting.start()  # back with the state of before the logout
        assert get_todos(api_client, ended["access_token"]).status_code == 401
        assert get_todos(api_client, alive["access_token"]).status_code == 200
        assert get_todos(api_client, ended["access_token"]).status_code == 401
    finally:
        snapshotting.close()


def test_a_crash_restart_from_an_older_snapshot_never_lets_an_ended_session_in(
    listed, settings, api_client, user, other_user, login
):
    snapshotting = RedisProcess(persist=True).start()
    try:
        settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": snapshotting.url}
        alive, ended = login(other_user), login(user)
        get_todos(api_client, alive["access_token"])
        client = Redis.from_url(snapshotting.url)
        client.save()  # the snapshot holds a fresh epoch (believed for a minute)
        response = api_client.post("/auth/logout-all", **bearer(ended["access_token"]))
        assert response.status_code == 200 and client.exists(marker_key(sid_of(ended)))
        snapshotting.kill()
        snapshotting.start()  # the epoch is back, the marker is not
        assert client.exists(epoch_key()) and not client.exists(marker_key(sid_of(ended)))
        assert get_todos(api_client, ended["access_token"]).status_code == 401
        assert get_todos(api_client, alive["access_token"]).status_code == 200
        assert get_todos(api_client, ended["access_token"]).status_code == 401
    finally:
        snapshotting.close()


def test_a_redis_that_evicts_keys_keeps_the_list_off(listed, api_client, user, login, caplog):
    listed.config_set("maxmemory-policy", "allkeys-lru")
    pair = login(user)
    with caplog.at_level(logging.WARNING, logger="accounts.revocations"):
        for _ in range(2):
            status, sql = queries_of(api_client, pair["access_token"])
            assert status == 200 and "accounts_session" in sql[0]
    assert not listed.exists(epoch_key())
    assert "maxmemory-policy allkeys-lru" in caplog.text


def test_a_token_past_its_sessions_end_is_refused_even_while_the_list_vouches(
    listed, api_client, user, login, settings, time_machine
):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_ABSOLUTE_LIFETIME": timedelta(minutes=5)}
    time_machine.move_to(user.date_joined, tick=False)
    pair = login(user)
    get_todos(api_client, pair["access_token"])
    assert queries_of(api_client, pair["access_token"])[0] == 200
    time_machine.shift(timedelta(minutes=6))  # the access token (15 minutes) has not expired
    refused = get_todos(api_client, pair["access_token"])
    assert refused.status_code == 401 and refused.json()["code"] == "token_expired"


def test_a_token_minted_before_the_list_existed_is_checked_in_the_database(
    listed, api_client, user, login
):
    pair = login(user)
    claims = token_backend.decode(pair["access_token"])
    assert SESSION_EXPIRY_CLAIM in claims
    del claims[SESSION_EXPIRY_CLAIM]
    older = token_backend.encode(claims)
    get_todos(api_client, older)
    status, sql = queries_of(api_client, older)
    assert status == 200 and "accounts_session" in sql[0]


def test_deleting_a_user_ends_its_sessions_on_the_record(user, login):
    from accounts.models import SecurityEvent

    sids = {sid_of(login(user)) for _ in range(2)}
    get_user_model().objects.filter(pk=user.pk).delete()
    ended = SecurityEvent.objects.filter(kind="session_revoked", reason="user_deleted")
    assert {str(sid) for sid in ended.values_list("session_id", flat=True)} == sids
    assert set(ended.values_list("user", flat=True)) == {None}


def test_two_deployments_on_one_redis_never_vouch_for_each_other(
    listed, settings, api_client, user, login, monkeypatch
):
    ended = login(user)
    get_todos(api_client, ended["access_token"])
    Session.objects.filter(pk=sid_of(ended)).revoke(RevokeReason.LOGOUT)
    ours = epoch_key()
    listed.flushall()
    # Another deployment (another issuer, another database, where nothing ended) on the
    # same Redis warms its own list first.
    settings.ACCOUNTS = {**settings.ACCOUNTS, "ISSUER": "https://staging.example.com"}
    with monkeypatch.context() as elsewhere:
        elsewhere.setattr(revocation_window, "ended_since", lambda since: [])
        assert revocation_list().renew(None)
    assert epoch_key() != ours and listed.exists(epoch_key()) and not listed.exists(ours)
    settings.ACCOUNTS = {**settings.ACCOUNTS, "ISSUER": "http://testserver"}
    assert get_todos(api_client, ended["access_token"]).status_code == 401
