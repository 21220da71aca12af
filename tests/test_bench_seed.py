"""The bench's seeder: rows shaped as login, rotation and logout leave them.

The seeder is bench tooling, not a product app, so these tests call its function
directly; the product settings never install it.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.cleanup import clear_expired
from accounts.models import EventKind, SecurityEvent, Session, SessionToken
from bench.seed import seed_sessions

pytestmark = pytest.mark.django_db


def test_seed_sessions_spreads_tokens_over_sessions_as_chains():
    seeded = seed_sessions(tokens=53, sessions=10, batch_size=20)

    assert (seeded.tokens, seeded.sessions) == (53, 10)
    assert OutstandingToken.objects.count() == 53
    assert Session.objects.count() == 10
    assert SessionToken.objects.count() == 53
    assert sorted(s.token_links.count() for s in Session.objects.all()) == [5] * 7 + [6] * 3


def test_seed_sessions_blacklists_every_token_but_the_current_one_of_live_sessions():
    seed_sessions(tokens=40, sessions=10)

    for session in Session.objects.select_related("current_token"):
        chain = session.token_links.order_by("-token__created_at")
        newest, previous = chain[0].token, chain[1].token
        assert session.current_token == newest
        assert (session.current_jti, session.previous_jti) == (newest.jti, previous.jti)
        blacklisted = set(
            BlacklistedToken.objects.filter(token__session_link__session=session).values_list(
                "token_id", flat=True
            )
        )
        tokens = set(chain.values_list("token_id", flat=True))
        if session.revoked_at is None:
            assert blacklisted == tokens - {newest.pk}
        else:
            assert blacklisted == tokens
    assert Session.objects.revoked().count() == 1


def test_seed_sessions_live_rows_are_live():
    seed_sessions(tokens=20, sessions=5)

    now = timezone.now()
    assert not OutstandingToken.objects.filter(expires_at__lte=now).exists()
    assert Session.objects.filter(expires_at__gt=now).count() == 5


def test_seed_sessions_expired_rows_are_all_expired():
    seed_sessions(tokens=20, sessions=5, chain=2, expired=True)

    now = timezone.now()
    assert OutstandingToken.objects.count() == 20
    assert not OutstandingToken.objects.filter(expires_at__gt=now).exists()
    assert not Session.objects.filter(expires_at__gt=now).exists()


def test_seed_sessions_chain_leaves_the_rest_without_sessions_half_blacklisted():
    seeded = seed_sessions(tokens=100, sessions=10, chain=2, batch_size=7)

    assert SessionToken.objects.count() == 20
    assert OutstandingToken.objects.filter(session_link__isnull=True).count() == 80
    # One token of each chain of two is rotated out; one session in ten logged out.
    assert seeded.blacklisted == BlacklistedToken.objects.count() == 50 + 1


def test_seed_sessions_users_cannot_log_in():
    seed_sessions(tokens=30, sessions=30, users=3)

    users = get_user_model().objects.all()
    assert users.count() == 3
    assert not any(user.has_usable_password() for user in users)


def test_seed_sessions_without_sessions_seeds_bare_tokens():
    seed_sessions(tokens=25, sessions=0, batch_size=10)

    assert OutstandingToken.objects.count() == 25
    assert not Session.objects.exists()
    assert not BlacklistedToken.objects.exists()


def test_seed_sessions_twice_adds_rows_without_collisions():
    seed_sessions(tokens=10, sessions=2)
    seed_sessions(tokens=10, sessions=2)

    assert OutstandingToken.objects.count() == 20
    assert get_user_model().objects.count() == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tokens": 5, "sessions": 6}, "sessions \\* chain must be <= tokens"),
        ({"tokens": 10, "sessions": 6, "chain": 2}, "sessions \\* chain must be <= tokens"),
        ({"tokens": 5, "sessions": 1, "chain": 0}, "chain must be >= 1"),
        ({"tokens": 5, "sessions": 1, "old_events": -1}, "events must be >= 0"),
    ],
)
def test_seed_sessions_impossible_shapes_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        seed_sessions(**options)

    assert not OutstandingToken.objects.exists()


def test_seed_sessions_seeds_recent_security_events_of_its_users():
    seeded = seed_sessions(tokens=40, sessions=10, events=25, batch_size=10)
    events = SecurityEvent.objects.all()
    assert seeded.events == events.count() == 25
    assert set(events.values_list("user_id", flat=True)) <= set(
        get_user_model().objects.values_list("pk", flat=True)
    )
    oldest = timezone.now() - timedelta(days=settings.ACCOUNTS["SECURITY_EVENT_RETENTION_DAYS"])
    assert not events.filter(created_at__lt=oldest).exists()
    assert {e.kind for e in events} <= set(EventKind.values)


def test_seed_sessions_old_events_are_past_retention_and_come_first():
    seeded = seed_sessions(tokens=10, sessions=2, events=15, old_events=12, batch_size=5)
    retention = timedelta(days=settings.ACCOUNTS["SECURITY_EVENT_RETENTION_DAYS"])
    cutoff = timezone.now() - retention
    old = SecurityEvent.objects.filter(created_at__lt=cutoff)
    assert (seeded.events, seeded.old_events) == (15, 12)
    assert old.count() == 12 and SecurityEvent.objects.count() == 27
    # Written as time writes them: every old event has a lower id than every recent one.
    newest_old = max(old.values_list("pk", flat=True))
    assert not SecurityEvent.objects.filter(pk__lt=newest_old, created_at__gte=cutoff).exists()
    # And cleanup deletes exactly those.
    assert clear_expired().security_events == 12
    assert SecurityEvent.objects.count() == 15
