"""Session events sent to resource servers (accounts.delivery): signed, in order per
receiver, retried with backoff, held by one worker at a time, and never sent anywhere a
receiver cannot live."""

import contextlib
import http.server
import itertools
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import delivery
from accounts.models import (
    OutboxEvent,
    PushState,
    ResourceServer,
    RevokeReason,
    Session,
)
from tests.pushing import (
    REVOKED,
    VERIFIED,
    Receiver,
    deliver_all,
    revoke,
    revoked_sids,
)

pytestmark = pytest.mark.django_db


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
        delivery.deliver(failing.record.pk)
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
    delivery.deliver(failing.record.pk)
    assert OutboxEvent.objects.get(pk=event.pk).state == PushState.DELIVERED


def test_a_receiver_refusing_an_event_400_is_not_sent_it_again(user, tokens, receivers):
    refusing = receivers[0]
    refusing.status = 400
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    delivery.deliver(refusing.record.pk)
    delivery.deliver(refusing.record.pk)
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
    delivery.deliver(receiver.record.pk)  # the first fails and backs off
    receiver.status = 202
    delivery.deliver(receiver.record.pk)  # the second is due, but waits behind the first
    assert len(receiver.received) == 1
    assert receiver.record.pk not in delivery.due_receivers()
    time_machine.shift(timedelta(minutes=5))
    delivery.deliver(receiver.record.pk)
    assert revoked_sids(receiver)[-2:] == [str(sid) for sid in sids]
    assert first and second


def test_a_receiver_held_by_one_worker_is_not_delivered_by_another(user, tokens, receivers):
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    held = receivers[0].record
    ResourceServer.objects.filter(pk=held.pk).update(
        delivering_until=timezone.now() + timedelta(minutes=1)
    )
    assert delivery.deliver(held.pk) == 0 and receivers[0].received == []
    assert held.pk not in delivery.due_receivers()


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
    delivery.deliver(failing.record.pk)
    time_machine.shift(timedelta(hours=24))
    delivery.deliver(failing.record.pk)
    event = OutboxEvent.objects.get(receiver=failing.record)
    assert event.state == PushState.FAILED and "gave up after 24 h" in event.last_error
    assert failing.record.pk not in delivery.due_receivers()


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
        delivery.deliver(redirecting.pk)
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
        assert delivery.deliver(slow.pk) == 0
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
    send = delivery._send

    def send_then(server, event):
        delivered = send(server, event)
        after_each_send(server.pk)
        return delivered

    monkeypatch.setattr(delivery, "_send", send_then)


def test_a_receiver_disabled_during_a_delivery_is_sent_nothing_more(
    user, login, receivers, monkeypatch
):
    def disable(pk):
        ResourceServer.objects.filter(pk=pk).update(enabled=False)

    three_ended_then(user, login, monkeypatch, disable)
    assert delivery.deliver(receivers[0].record.pk) == 1
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
    assert delivery.deliver(target.pk) == 1
    assert ResourceServer.objects.get(pk=target.pk).delivering_until == other


def test_a_hold_lasts_a_few_push_timeouts_and_is_renewed_before_each_event(
    user, login, receivers, monkeypatch, settings
):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "PUSH_TIMEOUT_SECONDS": 20}
    assert delivery.lease_length() == timedelta(seconds=60)
    settings.ACCOUNTS = {**settings.ACCOUNTS, "PUSH_TIMEOUT_SECONDS": 5}
    assert delivery.lease_length() == timedelta(seconds=30)  # a dead worker holds no longer
    login(user), login(user)
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT_ALL)
    target = receivers[0].record
    leases = []
    send = delivery._send

    def send_and_look(server, event):
        leases.append(ResourceServer.objects.get(pk=server.pk).delivering_until)
        return send(server, event)

    monkeypatch.setattr(delivery, "_send", send_and_look)
    assert delivery.deliver(target.pk) == 2
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
    delivery.deliver(named.pk)
    event = OutboxEvent.objects.get(receiver=named)
    assert event.state == PushState.PENDING
    assert event.last_error == "no receiver lives at 169.254.169.254"


def test_a_failed_push_records_the_status_not_the_receivers_page(user, tokens, receivers):
    receivers[0].status = 500
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    delivery.deliver(receivers[0].record.pk)
    assert OutboxEvent.objects.get(receiver=receivers[0].record).last_error == "500"


def test_a_receiver_deleted_during_a_push_ends_the_delivery_quietly(
    user, tokens, receivers, monkeypatch
):
    post = delivery.post
    target = receivers[0].record

    def deleted_meanwhile(url, body, timeout):
        answer = post(url, body, timeout)
        ResourceServer.objects.filter(pk=target.pk).delete()
        return answer

    monkeypatch.setattr(delivery, "post", deleted_meanwhile)
    revoke(Session.objects.filter(user=user), RevokeReason.LOGOUT)
    assert delivery.deliver(target.pk) == 1
    assert not OutboxEvent.objects.filter(receiver_id=target.pk).exists()
