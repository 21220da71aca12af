"""Session events pushed to resource servers: Security Event Tokens (RFC 8417) over RFC 8935.

Whenever a session ends, every enabled resource server with a push URL gets one CAEP
`session-revoked` event; a password change also sends `credential-change`. The
transaction that ends the session writes one notice (accounts.models.PushNotice),
whatever the number of receivers, so a revocation that rolls back tells nobody and
receivers never slow the revoking request. A worker of Celery (accounts.tasks) fans each
notice out into the outbox, an OutboxEvent per receiver, and sends those: at least once,
with the same `jti` on every retry, in order per receiver (one worker at a time holds a
receiver), retrying with exponential backoff for PUSH_RETRY_HOURS. A heartbeat (an SSF
verification event) is queued behind everything not yet delivered to a receiver every
HEARTBEAT_SECONDS, so receiving one proves every earlier event arrived: a receiver that
hears nothing for longer knows it may have missed some, and asks by introspection
instead (examples/resource_server).
"""

import contextlib
import http.client
import logging
import random
import socket
import ssl
import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from accounts.conf import app_settings
from accounts.models import (
    OutboxEvent,
    PushKind,
    PushNotice,
    PushState,
    ResourceServer,
    RevokeReason,
)
from accounts.models.servers import no_receiver_at
from accounts.signing import token_backend

logger = logging.getLogger("accounts.push")

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
EVENT_TYPES = {
    PushKind.SESSION_REVOKED: CAEP + "session-revoked",
    PushKind.CREDENTIAL_CHANGE: CAEP + "credential-change",
    PushKind.VERIFICATION: "https://schemas.openid.net/secevent/ssf/event-type/verification",
}
# CAEP's initiating_entity: who ended the session.
INITIATED_BY = {
    RevokeReason.LOGOUT: "user",
    RevokeReason.LOGOUT_ALL: "user",
    RevokeReason.USER: "user",
    RevokeReason.REVOKED_BY_CLIENT: "user",
    RevokeReason.PASSWORD_CHANGE: "user",
    RevokeReason.ADMIN: "admin",
    RevokeReason.USER_DEACTIVATED: "admin",
    RevokeReason.USER_DELETED: "admin",
    RevokeReason.REUSE_DETECTED: "policy",
    RevokeReason.SESSION_LIMIT: "policy",
}
# Events delivered to one receiver per hold of it; then another worker may take a turn.
BATCH = 100
# Notices fanned out per transaction. A notice names at most REVOKE_CHUNK (500) sessions,
# so one transaction writes at most 10,000 events a receiver, however many sessions an
# admin ends at once; a logout's notice names one.
FAN_OUT_BATCH = 20
# A receiver hears of the sessions that end once it is registered, and of those that ended
# up to this long before (app servers' clocks may differ by as much): so a backlog of
# notices left while no worker ran does not flood a receiver registered since.
REGISTRATION_SKEW = timedelta(minutes=1)


def receivers():
    """The resource servers events go to: enabled, with a push URL."""
    return ResourceServer.objects.filter(enabled=True).exclude(push_url="")


def session_ends(sessions: list[tuple], reason: str, *, by=None, now: datetime) -> None:
    """Tell every receiver that these sessions, (sid, user id) pairs, ended: one notice, in
    the caller's transaction (the one that ends them)."""
    if sessions:
        entity = "admin" if by is not None else INITIATED_BY.get(reason, "system")
        PushNotice.objects.create(
            kind=PushKind.SESSION_REVOKED,
            subjects=[_session(sid, user_id) for sid, user_id in sessions],
            details={"initiating_entity": entity, "reason_admin": {"en": str(reason)}},
            created_at=now,
        )


def credential_changed(user, *, by=None, now: datetime) -> None:
    """Tell every receiver that `user`'s password changed (`credential-change`)."""
    PushNotice.objects.create(
        kind=PushKind.CREDENTIAL_CHANGE,
        subjects=[{"format": "iss_sub", "iss": app_settings.ISSUER, "sub": str(user.pk)}],
        details={
            "credential_type": "password",
            "change_type": "update",
            "initiating_entity": "admin" if by is not None else "user",
        },
        created_at=now,
    )


def fan_out() -> Counter:
    """Turn the waiting notices into outbox events, an event per enabled receiver per
    subject, oldest notice first; returns how many events of each kind it wrote.

    Each batch is one transaction: the events are written and the notices deleted
    together, so a notice is fanned out once. Its rows are locked first, so a second
    worker doing the same waits, then skips what the first deleted: the events are
    queued in the order the notices were written. A receiver disabled since a notice was
    written is not told; one registered since is not told either (REGISTRATION_SKEW).
    A heartbeat's notice gives each receiver one heartbeat, unless one already waits.
    """
    written = Counter()
    while True:
        with transaction.atomic():
            notices = list(PushNotice.objects.select_for_update().order_by("id")[:FAN_OUT_BATCH])
            if not notices:
                return written
            # Who is told: each receiver enabled now, with when it was registered.
            targets = list(receivers().values_list("pk", "client_id", "created_at"))
            # Receivers with a heartbeat waiting get no second one.
            waiting = OutboxEvent.objects.filter(
                state=PushState.PENDING, kind=PushKind.VERIFICATION
            )
            beating = set(waiting.values_list("receiver_id", flat=True))
            events = [event for notice in notices for event in _fan(notice, targets, beating)]
            OutboxEvent.objects.bulk_create(events, batch_size=BATCH * 10)
            PushNotice.objects.filter(pk__in=[notice.pk for notice in notices]).delete()
        written.update(event.kind for event in events)
        if len(notices) < FAN_OUT_BATCH:
            return written


def _fan(notice: PushNotice, targets: list[tuple], beating: set) -> list[OutboxEvent]:
    """The events of one notice: for each of `targets` (pk, client id, registered) that was
    registered in time, one per subject; a heartbeat only to receivers not in `beating`
    (those with one waiting), which it joins."""
    events = []
    for receiver, audience, registered in targets:
        if registered > notice.created_at + REGISTRATION_SKEW:
            continue
        subjects = notice.subjects
        if notice.kind == PushKind.VERIFICATION:
            if receiver in beating:
                continue
            beating.add(receiver)
            subjects = [{"format": "opaque", "id": audience}]
        events += [
            _event(receiver, audience, notice.kind, subject, notice.details, notice.created_at)
            for subject in subjects
        ]
    return events


def queue_heartbeats(now: datetime | None = None) -> int:
    """A verification event for every receiver without one waiting; returns how many.

    Delivered in order, behind every event written before it, a heartbeat proves they
    all arrived, however busy the queue (steady logouts never starve it); and a receiver
    that cannot be reached collects one waiting heartbeat, not thousands. It is a notice
    like a session's end, fanned out at once: so every session whose end committed
    before it was written has its events queued ahead of it.
    """
    now = now or timezone.now()
    PushNotice.objects.create(
        kind=PushKind.VERIFICATION, subjects=[], details={"state": now.isoformat()}, created_at=now
    )
    return fan_out()[PushKind.VERIFICATION]


def due_receivers(now: datetime | None = None) -> list[int]:
    """Receivers whose oldest waiting event is due now, and that no worker holds."""
    now = now or timezone.now()
    head = OutboxEvent.objects.filter(receiver=OuterRef("pk"), state=PushState.PENDING)
    head = head.order_by("id").values("next_attempt_at")[:1]
    free = Q(delivering_until__isnull=True) | Q(delivering_until__lt=now)
    due = receivers().filter(free).annotate(head_due=Subquery(head)).filter(head_due__lte=now)
    return list(due.values_list("pk", flat=True))


def deliver(receiver_id: int) -> int:
    """Send `receiver_id`'s due events, oldest first, until one fails; returns how many arrived.

    Holds the receiver while it sends (a lease on its row, taken and renewed by
    compare-and-swap, which works on SQLite and PostgreSQL alike), so no two workers
    deliver to it at once; never holds a database transaction across a network call.
    The receiver is read again before each event: disabled, deleted or without a URL,
    it is sent nothing more.
    """
    lease = _hold(receiver_id)
    if lease is None:
        return 0  # another worker holds it
    delivered = 0
    try:
        pending = OutboxEvent.objects.filter(receiver_id=receiver_id, state=PushState.PENDING)
        for event in pending.order_by("id")[:BATCH]:
            server = receivers().filter(pk=receiver_id).first()
            # In order: what comes after the oldest waits for it, even while it backs off.
            if server is None or event.next_attempt_at > timezone.now():
                break
            lease = _renew(receiver_id, lease)
            if lease is None or not _send(server, event):
                break
            delivered += 1
    finally:
        if lease is not None:
            ResourceServer.objects.filter(pk=receiver_id, delivering_until=lease).update(
                delivering_until=None
            )
    return delivered


def lease_length() -> timedelta:
    """How long a hold lasts unless renewed: well past one push's deadline, so a worker
    that dies mid-delivery holds its receiver up for this long at most."""
    return timedelta(seconds=max(30, 3 * app_settings.PUSH_TIMEOUT_SECONDS))


def _hold(receiver_id: int) -> datetime | None:
    """Take the receiver if no live lease holds it; the lease (its end) or None."""
    now = timezone.now()
    until = now + lease_length()
    free = Q(delivering_until__isnull=True) | Q(delivering_until__lt=now)
    taken = ResourceServer.objects.filter(free, pk=receiver_id).update(delivering_until=until)
    return until if taken else None


def _renew(receiver_id: int, lease: datetime) -> datetime | None:
    """Extend our own lease; None if it was lost (it ran out and another worker took it)."""
    until = timezone.now() + lease_length()
    kept = ResourceServer.objects.filter(pk=receiver_id, delivering_until=lease)
    return until if kept.update(delivering_until=until) else None


def retry(events) -> int:
    """Send these events again as soon as a worker can (the admin's action)."""
    return events.exclude(state=PushState.DELIVERED).update(
        state=PushState.PENDING, next_attempt_at=timezone.now(), last_error=""
    )


def _send(server: ResourceServer, event: OutboxEvent) -> bool:
    """POST one event (RFC 8935 §2); record the outcome. True if the receiver took it."""
    now = timezone.now()
    body = token_backend.sign(event.claims, headers={"typ": "secevent+jwt"}).encode()
    status, error = 0, ""
    try:
        status, error = post(server.push_url, body, app_settings.PUSH_TIMEOUT_SECONDS)
    except (OSError, ValueError, http.client.HTTPException) as failed:
        # Refused, reset, timed out, cut at the deadline, no such host, a forbidden address.
        error = str(failed)[:300] or type(failed).__name__
    changes = {"attempts": event.attempts + 1, "last_attempt_at": now}
    if status in (200, 202):
        changes.update(state=PushState.DELIVERED, delivered_at=now, last_error="")
        ResourceServer.objects.filter(pk=server.pk).update(last_delivered_at=now)
    elif status == 400:
        # RFC 8935 §2.3: the receiver will never take this event; sending it again is no use.
        changes.update(state=PushState.FAILED, last_error=f"400 refused: {error}"[:500])
    elif now - event.created_at >= timedelta(hours=app_settings.PUSH_RETRY_HOURS):
        changes.update(
            state=PushState.FAILED,
            last_error=f"gave up after {app_settings.PUSH_RETRY_HOURS} h: {status or error}",
        )
    else:
        changes.update(
            next_attempt_at=now + backoff(changes["attempts"]),
            last_error=(str(status) if status else error)[:500],
        )
    # An update, not save(): the event (or its receiver) may have been deleted meanwhile.
    OutboxEvent.objects.filter(pk=event.pk).update(**changes)
    if changes.get("state") != PushState.DELIVERED:
        logger.warning("Push to %s failed (%s): %s", server.name, event.kind, changes["last_error"])
    return changes.get("state") == PushState.DELIVERED


def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
    """POST a SET to `url`: the status, and the first line of a 400's body (RFC 8935's error).

    `timeout` bounds the whole exchange, not each read: a receiver that trickles its
    answer a byte at a time is cut off at it. Redirects are answers, never followed (they
    could point anywhere). The host's addresses are checked as the URL was when saved,
    so a name that resolves to a metadata service is refused too.
    """
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    for *_, address in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM):
        if no_receiver_at(ip_address(address[0].split("%")[0])):
            raise ValueError(f"no receiver lives at {address[0]}")
    if https:
        connection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    cut = threading.Event()
    deadline = threading.Timer(timeout, _cut, [connection, cut])
    deadline.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(
            "POST",
            target,
            body,
            {"Content-Type": "application/secevent+jwt", "Accept": "application/json"},
        )
        answer = connection.getresponse()
        detail = _first_line(answer.read(300)) if answer.status == 400 else ""
    finally:
        deadline.cancel()
        connection.close()
    if cut.is_set():
        # Cut mid-answer, what was read may look whole: it is no answer at all.
        raise TimeoutError(f"no whole answer within {timeout:g} s")
    return answer.status, detail


def _cut(connection: http.client.HTTPConnection, cut: threading.Event) -> None:
    """The push's deadline: shut its socket, so the read blocked on it ends at once."""
    cut.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # closed already: nothing to cut
            sock.shutdown(socket.SHUT_RDWR)


def backoff(attempts: int) -> timedelta:
    """Exponential, capped at PUSH_MAX_BACKOFF_SECONDS, with a fifth of jitter."""
    seconds = min(2 ** (attempts - 1), app_settings.PUSH_MAX_BACKOFF_SECONDS)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.0))  # noqa: S311 (not a secret)


def _event(receiver, audience, kind, subject, details, now) -> OutboxEvent:
    jti = uuid.uuid4().hex
    claims = {
        "iss": app_settings.ISSUER,
        "jti": jti,
        "iat": int(now.timestamp()),
        "aud": audience,
        "sub_id": subject,
        "events": {EVENT_TYPES[kind]: {"event_timestamp": int(now.timestamp()), **details}},
    }
    if kind == PushKind.VERIFICATION:
        claims["events"][EVENT_TYPES[kind]].pop("event_timestamp")
    return OutboxEvent(
        receiver_id=receiver, kind=kind, jti=jti, claims=claims, created_at=now, next_attempt_at=now
    )


def _session(sid, user_id) -> dict:
    """The subject of a session event: the session, and whose it is (RFC 9493 `complex`)."""
    return {
        "format": "complex",
        "session": {"format": "opaque", "id": str(sid)},
        "user": {"format": "iss_sub", "iss": app_settings.ISSUER, "sub": str(user_id)},
    }


def _first_line(body: bytes) -> str:
    return body.decode(errors="replace").strip().splitlines()[0][:200] if body.strip() else ""
