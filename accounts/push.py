"""Session events pushed to resource servers: Security Event Tokens (RFC 8417) over RFC 8935.

Whenever a session ends, every enabled resource server with a push URL gets one CAEP
`session-revoked` event; a password change also sends `credential-change`. The
transaction that ends the session writes one notice (accounts.models.PushNotice),
whatever the number of receivers, so a revocation that rolls back tells nobody and
receivers never slow the revoking request. A worker of Celery (accounts.tasks) fans each
notice out into the outbox, an OutboxEvent per receiver, and sends those
(accounts.delivery): at least once, with the same `jti` on every retry, in order per
receiver, retrying with exponential backoff for PUSH_RETRY_HOURS. A heartbeat (an SSF
verification event) is queued behind everything not yet delivered to a receiver every
HEARTBEAT_SECONDS, so receiving one proves every earlier event arrived: a receiver that
hears nothing for longer knows it may have missed some, and asks by introspection
instead (examples/resource_server).
"""

import uuid
from collections import Counter
from datetime import datetime, timedelta

from django.db import transaction
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
# Events per INSERT when a fan-out writes them.
INSERT_BATCH = 1000
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
            OutboxEvent.objects.bulk_create(events, batch_size=INSERT_BATCH)
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
