"""Session events pushed to resource servers: one per receiver per ended session, from a
notice written with the revocation and fanned out by the worker, signed, in order,
retried, and never lost."""

import contextlib
import http.server
import io
import itertools
import socket
import threading
import time
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

pytestmark = pytest.mark.django_db

REVOKED = push.EVENT_TYPES[PushKind.SESSION_REVOKED]
CHANGED = push.EVENT_TYPES[PushKind.CREDENTIAL_CHANGE]
VERIFIED = push.EVENT_TYPES[PushKind.VERIFICATION]


class Receiver:
    """A push endpoint on a free loopback port: records every SET, answers `status`."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.status = 202
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                assert self.headers["Content-Type"] == "application/secevent+jwt"
                receiver.received.append(body.decode())
                self.send_response(receiver.status)
                self.end_headers()
                if receiver.status == 400:
                    self.wfile.write(b'{"err": "invalid_request"}')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def claims(self) -> list[dict]:
        return [jwt.decode(token, options={"verify_signature": False}) for token in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    """Three receivers, registered with push URLs."""
    made = []
    for name in ("gateway", "worker", "search"):
        receiver = Receiver()
        call_command("add_resource_server", name, "--push-url", receiver.url, stdout=io.StringIO())
        receiver.record = ResourceServer.objects.get(name=name)
        made.append(receiver)
    yield made
    for receiver in made:
        receiver.close()


def deliver_all() -> None:
    """What the worker's next dispatch does: fan the notices out, then deliver to each."""
    push.fan_out()
    for receiver in ResourceServer.objects.all():
        push.deliver(receiver.pk)


def revoke(sessions, reason) -> None:
    """End `sessions`, then fan their notice out into the outbox, as dispatch would."""
    sessions.revoke(reason)
    push.fan_out()


def revoked_sids(receiver) -> list[str]:
    return [
        claims["sub_id"]["session"]["id"]
        for claims in receiver.claims()
        if REVOKED in claims["events"]
    ]


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


def test_a_receiver_that_is_down_gets_every_event_once_it_is_back(
    user, login, receivers, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    down = receivers[0]
    url = down.url
    down.close()  # nothing listens on its port any more
    sessions = [login(user) for _ in range(3)]
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT_ALL)
    for _ in range(4):  # retries, each after its backoff
        deliver_all()
        time_machine.shift(timedelta(seconds=30))
    event = OutboxEvent.objects.filter(receiver=down.record).order_by("id").first()
    assert event.state == PushState.PENDING and event.attempts >= 3 and event.last_error
    # The other receivers were not held up.
    assert all(len(revoked_sids(r)) == 3 for r in receivers[1:])

    back = Receiver()
    ResourceServer.objects.filter(pk=down.record.pk).update(push_url=back.url)
    time_machine.shift(timedelta(minutes=15))
    deliver_all()
    try:
        assert sorted(revoked_sids(back)) == sorted(str(s.pk) for s in Session.objects.all())
        jtis = [c["jti"] for c in back.claims()]
        assert len(jtis) == len(set(jtis)) == 3
        stored = set(OutboxEvent.objects.filter(receiver=down.record).values_list("jti", flat=True))
        assert set(jtis) == stored  # the same jti on every attempt: receivers de-duplicate by it
    finally:
        back.close()
    assert url and sessions


def test_a_receiver_answering_500_is_retried_with_backoff_and_the_admin_shows_it(
    user, tokens, receivers, admin_client, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    failing = receivers[0]
    failing.status = 500
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    waits = []
    for _ in range(4):
        push.deliver(failing.record.pk)
        event = OutboxEvent.objects.get(receiver=failing.record)
        waits.append((event.next_attempt_at - timezone.now()).total_seconds())
        time_machine.shift(timedelta(seconds=waits[-1] + 0.01))
    assert len(failing.received) == 4 and event.attempts == 4
    assert all(later > earlier for earlier, later in itertools.pairwise(waits))
    page = admin_client.get(reverse("admin:accounts_outboxevent_changelist")).content.decode()
    assert "Pending" in page and "500" in page
    # The operator retries it at once, once the receiver is fixed.
    failing.status = 202
    admin_client.post(
        reverse("admin:accounts_outboxevent_changelist"),
        {"action": "retry_now", "_selected_action": [event.pk]},
    )
    push.deliver(failing.record.pk)
    assert OutboxEvent.objects.get(pk=event.pk).state == PushState.DELIVERED


def test_a_receiver_refusing_an_event_400_is_not_sent_it_again(user, tokens, receivers):
    refusing = receivers[0]
    refusing.status = 400
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    push.deliver(refusing.record.pk)
    push.deliver(refusing.record.pk)
    event = OutboxEvent.objects.get(receiver=refusing.record)
    assert event.state == PushState.FAILED and "400" in event.last_error
    assert len(refusing.received) == 1


def test_events_reach_a_receiver_in_order_even_while_the_first_backs_off(
    user, login, receivers, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    receiver = receivers[0]
    receiver.status = 503
    first, second = login(user), login(user)
    sids = list(Session.objects.order_by("created_at", "pk").values_list("pk", flat=True))
    for sid in sids:
        revoke(Session.objects.filter(pk=sid), RevokeReason.USER)
    push.deliver(receiver.record.pk)  # the first fails and backs off
    receiver.status = 202
    push.deliver(receiver.record.pk)  # the second is due, but waits behind the first
    assert len(receiver.received) == 1
    assert receiver.record.pk not in push.due_receivers()
    time_machine.shift(timedelta(minutes=5))
    push.deliver(receiver.record.pk)
    assert revoked_sids(receiver)[-2:] == [str(sid) for sid in sids]
    assert first and second


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


def test_a_receiver_held_by_one_worker_is_not_delivered_by_another(user, tokens, receivers):
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    held = receivers[0].record
    ResourceServer.objects.filter(pk=held.pk).update(
        delivering_until=timezone.now() + timedelta(minutes=1)
    )
    assert push.deliver(held.pk) == 0 and receivers[0].received == []
    assert held.pk not in push.due_receivers()


def test_a_disabled_receiver_is_sent_nothing(user, tokens, receivers):
    ResourceServer.objects.filter(pk=receivers[0].record.pk).update(enabled=False)
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    assert not OutboxEvent.objects.filter(receiver=receivers[0].record).exists()
    assert OutboxEvent.objects.count() == 2


def test_a_receiver_failing_past_the_retry_period_is_given_up_on(
    user, tokens, receivers, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    failing = receivers[0]
    failing.status = 503
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    push.deliver(failing.record.pk)
    time_machine.shift(timedelta(hours=24))
    push.deliver(failing.record.pk)
    event = OutboxEvent.objects.get(receiver=failing.record)
    assert event.state == PushState.FAILED and "gave up after 24 h" in event.last_error
    assert failing.record.pk not in push.due_receivers()


def test_a_redirect_is_a_failed_delivery_never_followed(user, tokens, receivers):
    target = receivers[1]

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", target.url)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        redirecting = receivers[0].record
        ResourceServer.objects.filter(pk=redirecting.pk).update(
            push_url=f"http://127.0.0.1:{server.server_address[1]}/events"
        )
        revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
        push.deliver(redirecting.pk)
    finally:
        server.shutdown()
        server.server_close()
    event = OutboxEvent.objects.get(receiver=redirecting)
    assert event.state == PushState.PENDING and event.last_error.startswith("307")
    assert target.received == []  # the redirect's target heard nothing


def test_dispatch_hands_each_due_receiver_to_a_worker(user, tokens, receivers, settings):
    from accounts import tasks
    from project.celery import app

    Session.objects.filter(user=user).revoke(RevokeReason.LOGOUT)
    app.conf.task_always_eager = True
    try:
        assert tasks.dispatch() == 3
        assert tasks.dispatch() == 0  # nothing left due
        assert tasks.heartbeat() == 3
        assert tasks.dispatch.delay().get() == 3
    finally:
        app.conf.task_always_eager = False
    for receiver in receivers:
        assert [list(c["events"]) for c in receiver.claims()] == [[REVOKED], [VERIFIED]]


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


class Trickler:
    """A receiver that answers a status line, then a header byte every 0.2 s, for ever."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/events"
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        with contextlib.suppress(OSError):
            client, _ = self.listener.accept()
            client.sendall(b"HTTP/1.1 202 Accepted\r\n")
            while not self.stop.wait(0.2):
                client.sendall(b"X")

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_push_timeout(
    user, tokens, receivers, settings
):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "PUSH_TIMEOUT_SECONDS": 1}
    trickler = Trickler()
    try:
        slow = receivers[0].record
        ResourceServer.objects.filter(pk=slow.pk).update(push_url=trickler.url)
        revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
        started = time.monotonic()
        assert push.deliver(slow.pk) == 0
        assert time.monotonic() - started < 2  # every read got a byte, yet 1 s was all
    finally:
        trickler.close()
    event = OutboxEvent.objects.get(receiver=slow)
    assert event.state == PushState.PENDING and event.attempts == 1
    assert event.last_error == "no whole answer within 1 s"


def three_ended_then(user, login, monkeypatch, after_each_send) -> None:
    """Three ended sessions (three events a receiver); `after_each_send(receiver id)` runs
    after every push, as something else happening while the worker delivers."""
    for _ in range(3):
        login(user)
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT_ALL)
    send = push._send

    def send_then(server, event):
        delivered = send(server, event)
        after_each_send(server.pk)
        return delivered

    monkeypatch.setattr(push, "_send", send_then)


def test_a_receiver_disabled_during_a_delivery_is_sent_nothing_more(
    user, login, receivers, monkeypatch
):
    def disable(pk):
        ResourceServer.objects.filter(pk=pk).update(enabled=False)

    three_ended_then(user, login, monkeypatch, disable)
    assert push.deliver(receivers[0].record.pk) == 1
    assert len(receivers[0].received) == 1


def test_a_worker_that_lost_its_lease_stops_and_leaves_the_new_holder_alone(
    user, login, receivers, monkeypatch
):
    other = timezone.now() + timedelta(minutes=5)

    def lose_the_lease(pk):
        # The lease ran out meanwhile, and another worker took the receiver.
        ResourceServer.objects.filter(pk=pk).update(delivering_until=other)

    three_ended_then(user, login, monkeypatch, lose_the_lease)
    target = receivers[0].record
    assert push.deliver(target.pk) == 1
    assert ResourceServer.objects.get(pk=target.pk).delivering_until == other


def test_a_hold_lasts_a_few_push_timeouts_and_is_renewed_before_each_event(
    user, login, receivers, monkeypatch, settings
):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "PUSH_TIMEOUT_SECONDS": 20}
    assert push.lease_length() == timedelta(seconds=60)
    settings.ACCOUNTS = {**settings.ACCOUNTS, "PUSH_TIMEOUT_SECONDS": 5}
    assert push.lease_length() == timedelta(seconds=30)  # a dead worker holds no longer
    login(user), login(user)
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT_ALL)
    target = receivers[0].record
    leases = []
    send = push._send

    def send_and_look(server, event):
        leases.append(ResourceServer.objects.get(pk=server.pk).delivering_until)
        return send(server, event)

    monkeypatch.setattr(push, "_send", send_and_look)
    assert push.deliver(target.pk) == 2
    assert len(set(leases)) == 2  # renewed
    assert ResourceServer.objects.get(pk=target.pk).delivering_until is None


def test_a_host_name_that_resolves_to_a_metadata_service_is_refused_at_send(
    user, tokens, receivers, monkeypatch
):
    def resolves_to_metadata(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolves_to_metadata)
    named = receivers[0].record
    ResourceServer.objects.filter(pk=named.pk).update(push_url="http://receiver.internal/events")
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    push.deliver(named.pk)
    event = OutboxEvent.objects.get(receiver=named)
    assert event.state == PushState.PENDING
    assert event.last_error == "no receiver lives at 169.254.169.254"


def test_a_failed_push_records_the_status_not_the_receivers_page(user, tokens, receivers):
    receivers[0].status = 500
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    push.deliver(receivers[0].record.pk)
    assert OutboxEvent.objects.get(receiver=receivers[0].record).last_error == "500"


def test_a_receiver_deleted_during_a_push_ends_the_delivery_quietly(
    user, tokens, receivers, monkeypatch
):
    post = push.post
    target = receivers[0].record

    def deleted_meanwhile(url, body, timeout):
        answer = post(url, body, timeout)
        ResourceServer.objects.filter(pk=target.pk).delete()
        return answer

    monkeypatch.setattr(push, "post", deleted_meanwhile)
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    assert push.deliver(target.pk) == 1
    assert not OutboxEvent.objects.filter(receiver_id=target.pk).exists()


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
