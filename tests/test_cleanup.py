"""Cleanup of expired sessions and refresh tokens: batched, bounded, and harmless to live ones."""

import os
import re
import subprocess
import sys
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services
from accounts.cleanup import clear_expired
from accounts.clients import Client
from accounts.models import EventKind, RevokeReason, Session, SessionToken
from accounts.refresh import refresh_session
from tests.conftest import bearer

T0 = "2026-03-01 12:00:00+00:00"


@pytest.fixture
def history(api_client, user, other_user, login, time_machine):
    """At T0 alice has session `rotated` (refreshed once) and `logged_out` (revoked)."""
    time_machine.move_to(T0, tick=False)
    rotated = login(user)
    response = api_client.post(
        "/auth/refresh", {"refresh_token": rotated["refresh_token"]}, format="json"
    )
    assert response.status_code == 200
    rotated = response.json()
    logged_out = login(user)
    response = api_client.post(
        "/auth/logout",
        {"refresh_token": logged_out["refresh_token"]},
        format="json",
        **bearer(logged_out["access_token"]),
    )
    assert response.status_code == 200
    return {"rotated": rotated, "logged_out": logged_out}


def test_cleanup_before_any_expiry_deletes_nothing(history):
    counts = clear_expired()
    assert (counts.sessions, counts.outstanding_tokens, counts.blacklisted_tokens) == (0, 0, 0)
    assert OutstandingToken.objects.count() == 3
    assert Session.objects.count() == 2


def test_cleanup_after_idle_expiry_deletes_expired_tokens_keeps_sessions(
    history, time_machine, api_client, other_user, login
):
    time_machine.shift(timedelta(days=8))  # past the 7-day refresh lifetime
    bob = login(other_user)
    counts = clear_expired()
    # Gone: the rotated-out token and the logged-out session's token, both blacklisted.
    assert (counts.sessions, counts.outstanding_tokens, counts.blacklisted_tokens) == (0, 2, 2)
    # Kept: the expired current token of the session that is not revoked, and bob's.
    assert OutstandingToken.objects.count() == 2
    assert not BlacklistedToken.objects.exists()
    # The revoked session stays as the trail, until its absolute expiry.
    logged_out = Session.objects.get(revoked_at__isnull=False)
    assert logged_out.revoked_reason == RevokeReason.LOGOUT
    assert logged_out.current_token is None
    response = api_client.get("/todos", **bearer(bob["access_token"]))
    assert response.status_code == 200


def test_cleanup_keeps_live_session_usable(history, time_machine, api_client, user, login):
    time_machine.shift(timedelta(days=8))
    live = login(user)
    clear_expired()
    response = api_client.post(
        "/auth/refresh", {"refresh_token": live["refresh_token"]}, format="json"
    )
    assert response.status_code == 200
    response = api_client.get("/todos", **bearer(response.json()["access_token"]))
    assert response.status_code == 200


def test_cleanup_after_absolute_expiry_deletes_sessions_and_their_tokens(
    history, time_machine, other_user, login
):
    time_machine.shift(timedelta(days=8))
    login(other_user)
    time_machine.shift(timedelta(days=23))  # T0 + 31 days: alice's sessions have expired
    counts = clear_expired()
    assert counts.sessions == 2
    assert counts.outstanding_tokens == 3
    assert counts.blacklisted_tokens == 2
    assert counts.session_tokens == 3
    # Bob's session (T0 + 8 days) lives until T0 + 38 days, with its expired current token.
    assert list(Session.objects.values_list("user__username", flat=True)) == ["bob"]
    assert OutstandingToken.objects.count() == 1
    assert SessionToken.objects.count() == 1


def test_cleanup_is_idempotent(history, time_machine):
    time_machine.shift(timedelta(days=31))
    assert clear_expired().sessions == 2
    counts = clear_expired()
    assert (counts.sessions, counts.outstanding_tokens, counts.batches) == (0, 0, 0)


def test_cleanup_reads_ids_in_batches_never_all_rows(user, time_machine):
    time_machine.move_to(T0, tick=False)
    for _ in range(5):
        services.open_session(user=user, client=Client("127.0.0.1", "test"))
    time_machine.shift(timedelta(days=31))
    with CaptureQueriesContext(connection) as queries:
        counts = clear_expired(batch_size=2)
    assert (counts.sessions, counts.outstanding_tokens) == (5, 5)
    assert counts.batches == 6  # 3 batches of sessions and 3 of tokens: 2 + 2 + 1
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    # Each read is a page of at most 2 ids, or the rows of at most 2 ids: never all rows.
    assert reads and all(rows_bounded_by(sql, 2) for sql in reads), reads
    assert not Session.objects.exists()


def rows_bounded_by(sql: str, limit: int) -> bool:
    """True if a SELECT reads at most `limit` rows: by LIMIT, an `IN (...)` id list, or MIN/MAX."""
    limits = [int(n) for n in re.findall(r"LIMIT (\d+)", sql)]
    if (limits and max(limits) <= limit) or sql.startswith("SELECT MIN("):
        return True
    id_lists = re.findall(r" IN \(([^()]*)\)", sql)
    return bool(id_lists) and all(len(ids.split(",")) <= limit for ids in id_lists)


def test_command_reports_counts(history, time_machine):
    time_machine.shift(timedelta(days=31))
    out = StringIO()
    call_command("cleanup_tokens", "--batch-size", "500", stdout=out)
    assert out.getvalue() == (
        "Deleted 2 expired sessions, 3 expired refresh tokens (2 of them blacklisted) and 0 "
        "security events older than 90 days and 0 sent session events, in 3 batches.\n"
        # The history's logout, which no event worker fanned out here.
        "1 ended sessions were never told to resource servers within 7 days: is the event "
        "worker running? (see docs/deployment.md)\n"
    )


def test_command_refuses_batch_size_below_one(db):
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("cleanup_tokens", "--batch-size", "0")


def test_cleanup_beside_refreshes_and_logout_all_on_postgres(
    postgres_only, transactional_db, user, time_machine
):
    """Cleanup from cron while the user refreshes and logs out everywhere: nobody fails."""
    time_machine.move_to(timezone.now() - timedelta(days=40), tick=False)
    for _ in range(60):
        services.open_session(user=user, client=Client("127.0.0.1", "old"))
    time_machine.move_to(timezone.now() + timedelta(days=40))
    _, pair = services.open_session(user=user, client=Client("127.0.0.1", "live"))
    errors: list[BaseException] = []

    def refresh_then_logout_all():
        nonlocal pair
        try:
            for _ in range(20):
                pair = refresh_session(refresh_token=pair.refresh)
            Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT_ALL)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def cleanup():
        try:
            clear_expired(batch_size=5)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh_then_logout_all), threading.Thread(target=cleanup)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    clear_expired()  # a session a request held was skipped; the next run takes it
    assert list(Session.objects.values_list("user_agent", flat=True)) == ["live"]
    assert Session.objects.get().revoked_reason == RevokeReason.LOGOUT_ALL


def test_cleanup_deletes_security_events_past_retention_only(user, time_machine, settings):
    from accounts.events import record
    from accounts.models import SecurityEvent

    time_machine.move_to(T0, tick=False)
    for _ in range(3):
        record(EventKind.LOGIN_FAILED, user=user, client=Client("10.0.0.1"))
    time_machine.shift(timedelta(days=60))
    record(EventKind.LOGIN_FAILED, user=user, client=Client("10.0.0.2"))
    time_machine.shift(timedelta(days=31))  # the first three are 91 days old now

    counts = clear_expired(batch_size=2)

    assert counts.security_events == 3
    assert list(SecurityEvent.objects.values_list("ip_address", flat=True)) == ["10.0.0.2"]
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SECURITY_EVENT_RETENTION_DAYS": 30}
    assert clear_expired().security_events == 1
    assert not SecurityEvent.objects.exists()


def test_a_process_that_only_runs_commands_holds_neither_icu_nor_the_user_agent_rules():
    """cleanup_tokens runs from cron in a process of its own: what only a sign-in needs
    (ICU's confusables, uap-core's rules: 15 MB) loads on first use, not with the app."""
    script = (
        "import sys, django; django.setup(); "
        "from django.core.management import load_command_class; "
        "load_command_class('accounts', 'cleanup_tokens'); "
        "print(sorted(m for m in ('icu', 'ua_parser') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
