"""Session events pushed to resource servers: Security Event Tokens (RFC 8417) over RFC 8935.

Whenever a session ends, every enabled resource server with a push URL gets one CAEP
`session-revoked` event; a password change also sends `credential-change`. The events
are rows of an outbox (accounts.models.OutboxEvent) written in the transaction that
ends the session, so a revocation that rolls back tells nobody. A worker of Celery
(accounts.tasks) sends them: at least once, with the same `jti` on every retry, in
order per receiver (one worker at a time holds a receiver), retrying with exponential
backoff for PUSH_RETRY_HOURS. A heartbeat (an SSF verification event) is queued behind
everything not yet delivered to a receiver every HEARTBEAT_SECONDS, so receiving one
proves every earlier event arrived: a receiver that hears nothing for longer knows it
may have missed some, and asks by introspection instead (examples/resource_server).
"""

import logging
import random
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.conf import app_settings
from accounts.models import (
    OutboxEvent,
    PushKind,
    PushState,
    ResourceServer,
    RevokeReason,
)
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
# How long a worker holds a receiver: longer than a batch of timed-out pushes.
LEASE = timedelta(minutes=10)


def receivers():
    """The resource servers events go to: enabled, with a push URL."""
    return ResourceServer.objects.filter(enabled=True).exclude(push_url="")


def session_ends(sessions: list[tuple], reason: str, *, by=None, now: datetime) -> None:
    """Queue a `session-revoked` event per (sid, user id) for every receiver; in the caller's
    transaction (the one that ends the sessions)."""
    targets = list(receivers().values_list("pk", "client_id"))
    if not targets or not sessions:
        return
    entity = "admin" if by is not None else INITIATED_BY.get(reason, "system")
    OutboxEvent.objects.bulk_create(
        _event(
            receiver,
            audience,
            PushKind.SESSION_REVOKED,
            _session(sid, user_id),
            {"initiating_entity": entity, "reason_admin": {"en": str(reason)}},
            now,
        )
        for sid, user_id in sessions
        for receiver, audience in targets
    )


def credential_changed(user, *, by=None, now: datetime) -> None:
    """Queue a `credential-change` event (a password) for every receiver."""
    subject = {"format": "iss_sub", "iss": app_settings.ISSUER, "sub": str(user.pk)}
    details = {
        "credential_type": "password",
        "change_type": "update",
        "initiating_entity": "admin" if by is not None else "user",
    }
    OutboxEvent.objects.bulk_create(
        _event(receiver, audience, PushKind.CREDENTIAL_CHANGE, subject, details, now)
        for receiver, audience in receivers().values_list("pk", "client_id")
    )


def queue_heartbeats(now: datetime | None = None) -> int:
    """A verification event for every receiver whose queue is empty; returns how many.

    Only behind an empty queue: a heartbeat then proves every earlier event arrived, and
    a receiver that cannot be reached collects one waiting heartbeat, not thousands.
    """
    now = now or timezone.now()
    waiting = OutboxEvent.objects.filter(receiver=OuterRef("pk"), state=PushState.PENDING)
    idle = receivers().filter(~Exists(waiting)).values_list("pk", "client_id")
    events = [
        _event(
            receiver,
            audience,
            PushKind.VERIFICATION,
            {"format": "opaque", "id": audience},
            {"state": now.isoformat()},
            now,
        )
        for receiver, audience in idle
    ]
    OutboxEvent.objects.bulk_create(events)
    return len(events)


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

    Holds the receiver while it sends (a compare-and-swap on its row, which works on
    SQLite and PostgreSQL alike), so no two workers deliver to it at once, and never
    holds a database transaction across a network call.
    """
    now = timezone.now()
    free = Q(delivering_until__isnull=True) | Q(delivering_until__lt=now)
    held = ResourceServer.objects.filter(free, pk=receiver_id).update(delivering_until=now + LEASE)
    if not held:
        return 0  # another worker holds it
    delivered = 0
    try:
        server = ResourceServer.objects.get(pk=receiver_id)
        queue = OutboxEvent.objects.filter(receiver=server, state=PushState.PENDING)
        for event in queue.order_by("id")[:BATCH]:
            # In order: what comes after the oldest waits for it, even while it backs off.
            if event.next_attempt_at > timezone.now() or not _send(server, event):
                break
            delivered += 1
    finally:
        ResourceServer.objects.filter(pk=receiver_id).update(delivering_until=None)
    return delivered


def retry(events) -> int:
    """Send these events again as soon as a worker can (the admin's action)."""
    return events.exclude(state=PushState.DELIVERED).update(
        state=PushState.PENDING, next_attempt_at=timezone.now(), last_error=""
    )


def _send(server: ResourceServer, event: OutboxEvent) -> bool:
    """POST one event (RFC 8935 §2); record the outcome. True if the receiver took it."""
    now = timezone.now()
    body = token_backend.sign(event.claims, headers={"typ": "secevent+jwt"}).encode()
    # http(s) only, as validate_push_url checked when the URL was saved.
    request = urllib.request.Request(  # noqa: S310
        server.push_url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/secevent+jwt", "Accept": "application/json"},
    )
    status, error = 0, ""
    try:
        with _opener.open(request, timeout=app_settings.PUSH_TIMEOUT_SECONDS) as answer:
            status = answer.status
    except urllib.error.HTTPError as refused:
        status, error = refused.code, _first_line(refused.read(300))
    except (OSError, ValueError) as failed:  # refused, reset, timed out, no such host
        error = str(failed)[:300]
    event.attempts += 1
    event.last_attempt_at = now
    if status in (200, 202):
        event.state, event.delivered_at, event.last_error = PushState.DELIVERED, now, ""
        ResourceServer.objects.filter(pk=server.pk).update(last_delivered_at=now)
    elif status == 400:
        # RFC 8935 §2.3: the receiver will never take this event; sending it again is no use.
        event.state, event.last_error = PushState.FAILED, f"400 refused: {error}"[:500]
    elif now - event.created_at >= timedelta(hours=app_settings.PUSH_RETRY_HOURS):
        event.state = PushState.FAILED
        event.last_error = f"gave up after {app_settings.PUSH_RETRY_HOURS} h: {status or error}"
    else:
        event.next_attempt_at = now + backoff(event.attempts)
        event.last_error = (f"{status}: {error}" if status else error)[:500]
    with transaction.atomic():
        event.save(
            update_fields=[
                "attempts",
                "last_attempt_at",
                "state",
                "delivered_at",
                "last_error",
                "next_attempt_at",
            ]
        )
    if event.state != PushState.DELIVERED:
        logger.warning("Push to %s failed (%s): %s", server.name, event.kind, event.last_error)
    return event.state == PushState.DELIVERED


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A push is answered where it was sent: a redirect is a failed delivery, never followed
    (it could point anywhere, a cloud's metadata service included)."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


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
