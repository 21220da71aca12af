"""Session events sent: each receiver's outbox, oldest first, over RFC 8935 push.

accounts.push queues the events; a Celery worker (accounts.tasks) sends them from here:
at least once, with the same `jti` on every retry, in order per receiver (one worker at a
time holds a receiver), retrying with exponential backoff for PUSH_RETRY_HOURS.
"""

import contextlib
import http.client
import logging
import random
import socket
import ssl
import threading
from datetime import datetime, timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from accounts.conf import app_settings
from accounts.models import OutboxEvent, PushState, ResourceServer
from accounts.models.servers import no_receiver_at
from accounts.push import receivers
from accounts.signing import token_backend

logger = logging.getLogger("accounts.push")

# Events delivered to one receiver per hold of it; then another worker may take a turn.
BATCH = 100


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


def _first_line(body: bytes) -> str:
    return body.decode(errors="replace").strip().splitlines()[0][:200] if body.strip() else ""
