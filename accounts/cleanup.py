"""Delete expired sessions and refresh tokens in small batches, safe beside live traffic."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import Session

BLACKLISTED = "token_blacklist.BlacklistedToken"
OUTSTANDING = "token_blacklist.OutstandingToken"
SESSIONS = "accounts.Session"


@dataclass
class CleanupCounts:
    """Rows deleted by one cleanup run."""

    sessions: int = 0
    outstanding_tokens: int = 0
    blacklisted_tokens: int = 0
    batches: int = 0
    # Every model the deletes reached, cascades included, e.g. "accounts.SessionToken".
    by_model: dict[str, int] = field(default_factory=dict)

    def add(self, deleted: dict[str, int]) -> None:
        """Count one batch's `QuerySet.delete()` result."""
        self.batches += 1
        for label, count in deleted.items():
            self.by_model[label] = self.by_model.get(label, 0) + count
        self.sessions = self.by_model.get(SESSIONS, 0)
        self.outstanding_tokens = self.by_model.get(OUTSTANDING, 0)
        self.blacklisted_tokens = self.by_model.get(BLACKLISTED, 0)


def clear_expired(*, batch_size: int = 1000, now: datetime | None = None) -> CleanupCounts:
    """Delete sessions past their absolute expiry, then refresh tokens past theirs.

    Revoked sessions that have not expired yet stay, as the trail of who ended them
    and why. Each batch is its own short transaction and holds at most `batch_size`
    ids in memory, so this runs from cron while the API serves requests.
    """
    now = now or timezone.now()
    counts = CleanupCounts()
    _delete_expired_sessions(now, batch_size, counts)
    _delete_expired_tokens(now, batch_size, counts)
    return counts


def _delete_expired_sessions(now: datetime, batch_size: int, counts: CleanupCounts) -> None:
    """Sessions past their absolute expiry, revoked or not, with their token links."""
    last = None
    while True:
        expired = Session.objects.filter(expires_at__lte=now).order_by("pk")
        if last is not None:
            expired = expired.filter(pk__gt=last)
        ids = list(expired.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        last = ids[-1]
        with transaction.atomic():
            # A request that holds a session's row (a refresh, a logout-all) may still
            # write to it: skip that one this run rather than wait or deadlock.
            locked = list(
                Session.objects.select_for_update(skip_locked=True)
                .filter(pk__in=ids, expires_at__lte=now)
                .values_list("pk", flat=True)
            )
            counts.add(Session.objects.filter(pk__in=locked).delete()[1])


def _delete_expired_tokens(now: datetime, batch_size: int, counts: CleanupCounts) -> None:
    """Expired outstanding tokens, their blacklist entries and session links.

    The current token of a session that is not revoked is kept even once expired: a
    logout-all may still blacklist it, and it goes with its session instead.
    """
    current_of_unrevoked = Session.objects.filter(
        current_token=OuterRef("pk"), revoked_at__isnull=True
    )
    last = 0
    while True:
        ids = list(
            OutstandingToken.objects.filter(expires_at__lte=now, pk__gt=last)
            .filter(~Exists(current_of_unrevoked))
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return
        last = ids[-1]
        # delete() cascades to BlacklistedToken and SessionToken and clears the
        # current_token of the revoked sessions kept for the trail, in one transaction.
        counts.add(OutstandingToken.objects.filter(pk__in=ids).delete()[1])
