"""Session events queued for resource servers: one per receiver per ended session, from a
notice written with the revocation and fanned out by the worker; heartbeats behind them."""

import io
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import jwt
import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import push
from accounts.models import (
    OutboxEvent,
    PushKind,
    PushNotice,
    PushState,
    ResourceServer,
    RevokeReason,
    Session,
)
from tests.conftest import PASSWORD, bearer
from tests.ending import end_by
from tests.pushing import (
    CHANGED,
    REVOKED,
    VERIFIED,
    Receiver,
    deliver_all,
    revoked_sids,
)

pytestmark = pytest.mark.django_db


def test_a_logout_is_pushed_to_every_receiver_once_as_a_signed_set(api_client, tokens, receivers):
    sid = str(Session.objects.get().pk)
    response = api_client.post(
        "/auth/logout",
        {"refresh_token": tokens["refresh_token"]},
        format="json",
        **bearer(tokens["access_token"]),
    )
    assert response.status_code == 200
    # One notice written with the revocation; the worker fans it out, then sends.
    assert (PushNotice.objects.count(), OutboxEvent.objects.count()) == (1, 0)
    push.fan_out()
    assert (PushNotice.objects.count(), OutboxEvent.objects.count()) == (0, 3)
    deliver_all()

    [published] = api_client.get("/.well-known/jwks.json").json()["keys"]
    key = jwt.PyJWK(published)
    for receiver in receivers:
        [token] = receiver.received
        header = jwt.get_unverified_header(token)
        assert (header["typ"], header["kid"]) == ("secevent+jwt", published["kid"])
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=receiver.record.client_id,
            issuer="http://testserver",
        )
        event = claims["events"][REVOKED]
        assert claims["sub_id"]["session"] == {"format": "opaque", "id": sid}
        assert claims["sub_id"]["user"]["sub"] == str(Session.objects.get().user_id)
        assert event["initiating_entity"] == "user" and event["reason_admin"] == {"en": "logout"}
        assert event["event_timestamp"] == claims["iat"] and claims["jti"]
    assert set(OutboxEvent.objects.values_list("state", flat=True)) == {PushState.DELIVERED}


REASONS = {
    "logout": "user",
    "logout_all": "user",
    "user": "user",
    "password_change": "user",
    "user_deactivated": "admin",
    "admin": "admin",
    "reuse_detected": "policy",
    "revoked_by_client": "user",
    "user_deleted": "admin",
    "session_limit": "policy",
}


@pytest.mark.parametrize(("reason", "entity"), REASONS.items(), ids=REASONS)
def test_every_way_a_session_ends_sends_exactly_one_event_per_receiver(
    api_client, user, tokens, receivers, admin_client, settings, reason, entity
):
    sid = str(Session.objects.get(user=user).pk)
    end_by(reason, api_client, tokens, user, admin_client, settings)
    deliver_all()
    for receiver in receivers:
        assert revoked_sids(receiver) == [sid], reason
        [event] = [c["events"][REVOKED] for c in receiver.claims() if REVOKED in c["events"]]
        assert event["reason_admin"] == {"en": reason}
        assert event["initiating_entity"] == entity


def test_the_session_limit_sends_one_event_for_the_session_it_ends(
    api_client, user, login, receivers, settings
):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_LIMIT_PER_USER": 1}
    first = login(user)
    oldest = str(Session.objects.get().pk)
    login(user)
    deliver_all()
    for receiver in receivers:
        assert revoked_sids(receiver) == [oldest]
        [event] = [c["events"][REVOKED] for c in receiver.claims()]
        assert (event["reason_admin"], event["initiating_entity"]) == (
            {"en": "session_limit"},
            "policy",
        )
    assert first


def test_a_password_change_also_sends_credential_change(api_client, user, tokens, receivers):
    response = api_client.post(
        "/auth/password",
        {"old_password": PASSWORD, "new_password": "another-Strong-pass-77"},
        format="json",
        **bearer(tokens["access_token"]),
    )
    assert response.status_code == 200
    deliver_all()
    for receiver in receivers:
        [claims] = [c for c in receiver.claims() if CHANGED in c["events"]]
        assert claims["sub_id"] == {
            "format": "iss_sub",
            "iss": "http://testserver",
            "sub": str(user.pk),
        }
        assert claims["events"][CHANGED]["credential_type"] == "password"


def test_a_revocation_rolled_back_sends_nothing(user, tokens, receivers):
    with pytest.raises(RuntimeError), transaction.atomic():
        Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT)
        raise RuntimeError("the request failed after the revocation")
    deliver_all()
    assert not PushNotice.objects.exists() and not OutboxEvent.objects.exists()
    assert all(receiver.received == [] for receiver in receivers)


def test_a_logout_writes_one_notice_and_reads_no_receiver(api_client, tokens, receivers):
    """Receivers never slow the revoking request: one row, whatever their number."""
    with CaptureQueriesContext(connection) as queries:
        response = api_client.post(
            "/auth/logout",
            {"refresh_token": tokens["refresh_token"]},
            format="json",
            **bearer(tokens["access_token"]),
        )
    assert response.status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert not [sql for sql in statements if "accounts_resourceserver" in sql]
    assert not [sql for sql in statements if "accounts_outboxevent" in sql]
    [insert] = [sql for sql in statements if "accounts_pushnotice" in sql]
    assert insert.startswith("INSERT")


def test_notices_fan_out_in_the_order_written_to_the_receivers_enabled_now(
    user, login, receivers, monkeypatch
):
    monkeypatch.setattr(push, "FAN_OUT_BATCH", 2)  # three notices: two batches
    for _ in range(3):
        login(user)
    sids = [
        str(sid)
        for sid in Session.objects.order_by("created_at", "pk").values_list("pk", flat=True)
    ]
    for sid in sids:
        Session.objects.filter(pk=sid).revoke(RevokeReason.USER)
    ResourceServer.objects.filter(pk=receivers[0].record.pk).update(enabled=False)
    assert push.fan_out() == {PushKind.SESSION_REVOKED: 3 * 2}  # to the two enabled
    assert not push.fan_out() and not PushNotice.objects.exists()
    assert not OutboxEvent.objects.filter(receiver=receivers[0].record).exists()
    for receiver in receivers[1:]:
        queue = OutboxEvent.objects.filter(receiver=receiver.record).order_by("id")
        assert [event.claims["sub_id"]["session"]["id"] for event in queue] == sids
        assert {event.claims["aud"] for event in queue} == {receiver.record.client_id}


def test_a_receiver_registered_since_a_notice_is_not_told_of_it(
    user, tokens, receivers, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    sid = str(Session.objects.get(user=user).pk)
    Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT)  # no worker runs yet
    time_machine.shift(push.REGISTRATION_SKEW / 2)  # within what clocks may differ by
    nearly = Receiver()
    call_command("add_resource_server", "nearly", "--push-url", nearly.url, stdout=io.StringIO())
    time_machine.shift(push.REGISTRATION_SKEW)
    later = Receiver()
    call_command("add_resource_server", "later", "--push-url", later.url, stdout=io.StringIO())
    try:
        deliver_all()
        assert revoked_sids(nearly) == [sid] and later.received == []
        assert all(revoked_sids(receiver) == [sid] for receiver in receivers)
    finally:
        nearly.close()
        later.close()


@pytest.mark.django_db(transaction=True)
def test_two_workers_fanning_out_at_once_queue_each_event_once_in_order(
    postgres_only, receivers, monkeypatch
):
    monkeypatch.setattr(push, "FAN_OUT_BATCH", 5)
    sids = [str(uuid.uuid4()) for _ in range(60)]
    for sid in sids:
        push.session_ends([(sid, 1)], RevokeReason.LOGOUT, now=timezone.now())
    barrier = threading.Barrier(2)

    def worker(_):
        try:
            barrier.wait(timeout=10)
            return push.fan_out()
        finally:
            connections.close_all()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=2) as pool:
        written = sum(pool.map(worker, range(2)), Counter())
    assert written == {PushKind.SESSION_REVOKED: len(sids) * len(receivers)}
    assert not PushNotice.objects.exists()
    for receiver in receivers:
        queue = OutboxEvent.objects.filter(receiver=receiver.record).order_by("id")
        assert [event.claims["sub_id"]["session"]["id"] for event in queue] == sids


def test_a_heartbeat_waits_behind_undelivered_events(user, tokens, receivers):
    assert push.queue_heartbeats() == 3
    assert push.queue_heartbeats() == 0  # one waiting heartbeat per receiver, not one a beat
    deliver_all()
    assert all(
        [c["events"] for c in r.claims()] == [{VERIFIED: r.claims()[0]["events"][VERIFIED]}]
        for r in receivers
    )
    receivers[0].status = 500
    Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT)
    deliver_all()
    assert push.queue_heartbeats() == 3  # the first's waits behind the event it has not taken
    assert push.queue_heartbeats() == 0
    receivers[0].status = 202
    OutboxEvent.objects.update(next_attempt_at=timezone.now())
    deliver_all()
    kinds = [list(c["events"]) for c in receivers[0].claims()]
    assert kinds[-2:] == [[REVOKED], [VERIFIED]]  # in order: the heartbeat vouches for it


def test_steady_session_ends_never_starve_the_heartbeat(user, login, receivers):
    """A receiver whose queue is never empty still gets a heartbeat every beat."""
    for _ in range(3):
        login(user)
        Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT)
        assert push.queue_heartbeats() == 3  # behind the event just written
        deliver_all()
    for receiver in receivers:
        kinds = [next(iter(c["events"])) for c in receiver.claims()]
        assert kinds == [REVOKED, VERIFIED] * 3


def test_cleanup_deletes_sent_events_and_old_heartbeats_and_keeps_pending_ones(
    user, tokens, receivers, time_machine
):
    from accounts.cleanup import clear_expired

    time_machine.move_to(timezone.now(), tick=False)
    receivers[0].status = 503
    Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT)
    deliver_all()  # the logout reaches two; the first backs off
    assert push.queue_heartbeats() == 3  # the first's waits behind its logout
    deliver_all()
    time_machine.shift(timedelta(hours=2))
    assert clear_expired().pushed_events == 2  # the delivered heartbeats
    time_machine.shift(timedelta(days=7))
    assert clear_expired().pushed_events == 2  # the delivered logouts, a week on
    left = OutboxEvent.objects.all()
    assert {(e.receiver_id, e.kind, e.state) for e in left} == {
        (receivers[0].record.pk, kind, PushState.PENDING)
        for kind in (PushKind.SESSION_REVOKED, PushKind.VERIFICATION)
    }


def test_cleanup_deletes_notices_no_worker_fanned_out_past_retention(
    user, tokens, receivers, time_machine
):
    from accounts.cleanup import clear_expired

    time_machine.move_to(timezone.now(), tick=False)
    Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT)  # and no worker runs
    time_machine.shift(timedelta(days=6))
    assert clear_expired().unsent_notices == 0 and PushNotice.objects.count() == 1
    time_machine.shift(timedelta(days=2))
    assert clear_expired().unsent_notices == 1 and not PushNotice.objects.exists()


def test_the_admin_lists_notices_no_worker_has_fanned_out(user, tokens, receivers, admin_client):
    sid = str(Session.objects.get(user=user).pk)
    Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT)  # and no worker runs
    changelist = reverse("admin:accounts_pushnotice_changelist")
    page = admin_client.get(changelist).content.decode()
    assert "Session revoked (CAEP)" in page and sid in page
    notice = PushNotice.objects.get()
    assert (
        admin_client.post(reverse("admin:accounts_pushnotice_delete", args=[notice.pk])).status_code
        == 403
    )
    push.fan_out()
    assert sid not in admin_client.get(changelist).content.decode()
