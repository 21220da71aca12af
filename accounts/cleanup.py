"""Delete what expires: sessions, refresh tokens, old security events, sent pushes; in batches.

Every batch reads at most `batch_size` primary keys, in primary-key order, then
deletes their rows with plain DELETE statements in one short transaction. Sessions
and outstanding tokens are deleted by `_delete_by_pk`, not QuerySet.delete(): other
tables point to them, so Django's collector would first fetch every row to cascade
by hand, when the rows pointing to them go just before in statements of their own.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections, router, transaction
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.conf import app_settings
from accounts.models import (
    OutboxEvent,
    PushKind,
    PushNotice,
    PushState,
    SecurityEvent,
    Session,
    SessionToken,
)

# 10,000 rows a batch: few round trips, short transactions (a fraction of a second on
# PostgreSQL), and within SQLite's 32,766 parameters a statement.
BATCH_SIZE = 10_000


@dataclass
class CleanupCounts:
    """Rows deleted by one cleanup run."""

    sessions: int = 0
    session_tokens: int = 0
    outstanding_tokens: int = 0
    blacklisted_tokens: int = 0
    security_events: int = 0
    pushed_events: int = 0
    # Notices no event worker fanned out before PUSHED_EVENT_RETENTION_DAYS ran out.
    unsent_notices: int = 0
    batches: int = 0


def clear_expired(*, batch_size: int = BATCH_SIZE, now: datetime | None = None) -> CleanupCounts:
    """Delete expired sessions, then expired refresh tokens, then events past retention.

    Revoked sessions stay until their absolute expiry, as the trail of who ended them
    and why. The current token of a session not yet revoked stays too, even expired:
    a logout-all may still blacklist it, and it goes with its session. Each batch is
    its own transaction, so this runs from cron while the API serves requests.
    """
    now = now or timezone.now()
    counts = CleanupCounts()
    _delete_expired_sessions(now, batch_size, counts)
    _release_expired_current_tokens(now, batch_size, counts)
    _delete_expired_tokens(now, batch_size, counts)
    _delete_old_events(now, batch_size, counts)
    _delete_sent_pushes(now, batch_size, counts)
    return counts


def _delete_expired_sessions(now: datetime, batch_size: int, counts: CleanupCounts) -> None:
    """Sessions past their absolute expiry, revoked or not, with their token links."""
    expired = Session.objects.filter(expires_at__lte=now).order_by("pk")
    for ids in _batches(expired, batch_size):
        with transaction.atomic():
            # A request holding a session's row (a refresh, a logout-all) may still write
            # to it: skip that one this run rather than wait for it.
            locked = list(
                Session.objects.select_for_update(skip_locked=True)
                .filter(pk__in=ids, expires_at__lte=now)
                .values_list("pk", flat=True)
            )
            if locked:
                counts.session_tokens += _deleted(SessionToken.objects.filter(session__in=locked))
                counts.sessions += _delete_by_pk(Session, locked)
        counts.batches += 1


def _release_expired_current_tokens(now: datetime, batch_size: int, counts: CleanupCounts) -> None:
    """Revoked sessions (kept until their absolute expiry) let go of expired current tokens.

    A revoked session never rotates again, so its current token only matters for the
    trail; once expired it can go, and the session keeps its jti.
    """
    stale = Session.objects.filter(
        revoked_at__isnull=False, current_token__expires_at__lte=now
    ).order_by("pk")
    for ids in _batches(stale, batch_size):
        Session.objects.filter(pk__in=ids).update(current_token=None)
        counts.batches += 1


def _delete_expired_tokens(now: datetime, batch_size: int, counts: CleanupCounts) -> None:
    """Expired outstanding tokens no session names as current, their blacklist rows and links.

    Batches are ranges of primary keys: the statements pick their rows by the range and
    the condition, so no list of ids travels to the database and back.
    """
    expired = OutstandingToken.objects.filter(expires_at__lte=now).filter(
        ~Exists(Session.objects.filter(current_token=OuterRef("pk")))
    )
    for low, high in _pk_ranges(expired, batch_size):
        batch = expired.filter(pk__gte=low, pk__lte=high)
        with transaction.atomic():
            counts.session_tokens += _deleted(SessionToken.objects.filter(token__in=batch))
            counts.blacklisted_tokens += _deleted(BlacklistedToken.objects.filter(token__in=batch))
            counts.outstanding_tokens += _delete_expired_token_range(low, high, now)
        counts.batches += 1


def _delete_old_events(now: datetime, batch_size: int, counts: CleanupCounts) -> None:
    """Security events older than SECURITY_EVENT_RETENTION_DAYS, oldest first."""
    cutoff = now - timedelta(days=app_settings.SECURITY_EVENT_RETENTION_DAYS)
    old = SecurityEvent.objects.filter(created_at__lt=cutoff)
    span = old.aggregate(first=Min("pk"), last=Max("pk"))
    if span["first"] is None:
        return
    # Events are written in time order: the old ones are ranges of ids from the first.
    for low in range(span["first"], span["last"] + 1, batch_size):
        batch = old.filter(pk__gte=low, pk__lt=low + batch_size)
        counts.security_events += _deleted(batch)
        counts.batches += 1


# A delivered heartbeat proves nothing once a newer one arrived: an hour's are kept.
HEARTBEAT_RETENTION = timedelta(hours=1)


def _delete_sent_pushes(now: datetime, batch_size: int, counts: CleanupCounts) -> None:
    """Outbox rows done with: delivered or failed ones past PUSHED_EVENT_RETENTION_DAYS,
    and delivered heartbeats past an hour. Pending ones stay, however old. Notices never
    fanned out go past PUSHED_EVENT_RETENTION_DAYS too: only a deployment that runs no
    worker leaves them (a worker fans them out within a beat)."""
    cutoff = now - timedelta(days=app_settings.PUSHED_EVENT_RETENTION_DAYS)
    for ids in _batches(
        PushNotice.objects.filter(created_at__lt=cutoff).order_by("pk"), batch_size
    ):
        counts.unsent_notices += _deleted(PushNotice.objects.filter(pk__in=ids))
        counts.batches += 1
    done = OutboxEvent.objects.exclude(state=PushState.PENDING)
    sent = done.filter(created_at__lt=cutoff) | done.filter(
        kind=PushKind.VERIFICATION,
        state=PushState.DELIVERED,
        created_at__lt=now - HEARTBEAT_RETENTION,
    )
    for ids in _batches(sent.order_by("pk"), batch_size):
        counts.pushed_events += _deleted(OutboxEvent.objects.filter(pk__in=ids))
        counts.batches += 1


def _batches(queryset, batch_size: int):
    """Primary keys of `queryset` (ordered by pk), `batch_size` at a time, never all at once."""
    last = None
    while True:
        page = queryset if last is None else queryset.filter(pk__gt=last)
        ids = list(page.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def _pk_ranges(queryset, batch_size: int):
    """(first, last) primary keys of each `batch_size` rows of `queryset`, in pk order."""
    pks = queryset.order_by("pk").values_list("pk", flat=True)
    low = pks.first()
    while low is not None:
        # The batch's last pk, or the very last one: two small reads, no list of ids.
        high = pks.filter(pk__gte=low)[batch_size - 1 : batch_size].first()
        if high is None:
            high = pks.filter(pk__gte=low).last()
        yield low, high
        low = pks.filter(pk__gt=high).first()


def _deleted(queryset) -> int:
    """Delete rows nothing points to: Django runs this as one plain DELETE."""
    return queryset.delete()[0]


def _delete_by_pk(model, pks: list) -> int:
    """DELETE FROM model WHERE pk IN pks, one plain statement; the rows deleted."""
    connection = connections[router.db_for_write(model)]
    pk = model._meta.pk
    values = [pk.get_db_prep_value(value, connection) for value in pks]
    placeholders = ", ".join(["%s"] * len(values))
    # Table and column names come from the model's metadata; the values are parameters.
    quote = connection.ops.quote_name
    sql = f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote(pk.column)} IN ({placeholders})"  # noqa: S608
    return _execute(connection, sql, values)


def _delete_expired_token_range(low: int, high: int, now: datetime) -> int:
    """The DELETE of `_delete_expired_tokens`' outstanding tokens: its condition, in SQL."""
    connection = connections[router.db_for_write(OutstandingToken)]
    quote = connection.ops.quote_name
    token, session = OutstandingToken._meta, Session._meta
    tokens, sessions = quote(token.db_table), quote(session.db_table)
    pk, current = quote(token.pk.column), quote(session.get_field("current_token").column)
    expires = token.get_field("expires_at")
    # Table and column names come from the models' metadata; the values are parameters.
    sql = (
        f"DELETE FROM {tokens} WHERE {pk} >= %s AND {pk} <= %s "  # noqa: S608
        f"AND {quote(expires.column)} <= %s AND NOT EXISTS "
        f"(SELECT 1 FROM {sessions} WHERE {current} = {tokens}.{pk})"
    )
    expires_at = expires.get_db_prep_value(now, connection)
    return _execute(connection, sql, [low, high, expires_at])


def _execute(connection, sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
