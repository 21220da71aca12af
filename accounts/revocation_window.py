"""The window the ended sessions cover: which access tokens a list of them may speak for,
how long an end is kept, and where a replay of the security record starts. Shared by the
list in Redis (accounts.revocations) and each process's copy (accounts.revocation_feed)."""

import time
from datetime import UTC, datetime, timedelta

from rest_framework_simplejwt import settings as simplejwt

from accounts.conf import app_settings
from accounts.tokens import SESSION_EXPIRY_CLAIM

# How far before the last replay the next one starts: revoking transactions that committed
# late, and app servers' clocks that disagree, stay inside it.
REPLAY_OVERLAP = timedelta(seconds=30)


def may_vouch_for(claims) -> bool:
    """Whether an access token is one the list can speak for: its session's end
    (`session_exp`) is ahead, and it lives no longer than access tokens do now. A token
    minted under a longer ACCESS_TOKEN_LIFETIME than today's could outlive its session's
    marker; the database decides for it."""
    names = (SESSION_EXPIRY_CLAIM, "iat", "exp")
    expiry, issued, expires = (claims.get(name) for name in names)
    if not all(isinstance(value, int) for value in (expiry, issued, expires)):
        return False
    return expiry > time.time() and expires - issued <= token_lifetime().total_seconds()


def lifetime_seconds() -> float:
    return app_settings.REVOCATION_LIST_SECONDS


def token_lifetime() -> timedelta:
    """The longest an access token is accepted after it was issued."""
    leeway = simplejwt.api_settings.LEEWAY
    if not isinstance(leeway, timedelta):
        leeway = timedelta(seconds=leeway)
    return simplejwt.api_settings.ACCESS_TOKEN_LIFETIME + leeway


def marker_seconds() -> int:
    """A marker outlives every access token its session issued before it ended."""
    return int((token_lifetime() + REPLAY_OVERLAP).total_seconds()) + 1


def ended_since(since: datetime) -> list[str]:
    """Every session ended at or after `since`, from the security record (which keeps the
    sessions of deleted users too)."""
    from accounts.models import EventKind, SecurityEvent

    ended = SecurityEvent.objects.filter(kind=EventKind.SESSION_REVOKED, created_at__gte=since)
    return [str(sid) for sid in ended.values_list("session_id", flat=True) if sid]


def replay_from(last: float | None, now: float) -> datetime:
    """Where a replay of the record starts (times in seconds since the epoch): a little
    before the `last` one began, or when it is None (cold), early enough for every session
    whose tokens may still be live."""
    if last is None:
        return datetime.fromtimestamp(now, UTC) - token_lifetime() - REPLAY_OVERLAP
    return datetime.fromtimestamp(last, UTC) - REPLAY_OVERLAP
