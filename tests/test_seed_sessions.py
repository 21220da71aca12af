"""The seed_sessions command: rows shaped as login, rotation and logout leave them."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import Session, SessionToken

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_sessions", stdout=out, **options)
    return out.getvalue()


def test_seed_sessions_spreads_tokens_over_sessions_as_chains():
    output = seed(tokens=53, sessions=10, batch_size=20)

    assert "Seeded 53 outstanding tokens" in output
    assert OutstandingToken.objects.count() == 53
    assert Session.objects.count() == 10
    assert SessionToken.objects.count() == 53
    assert sorted(s.token_links.count() for s in Session.objects.all()) == [5] * 7 + [6] * 3


def test_seed_sessions_blacklists_every_token_but_the_current_one_of_live_sessions():
    seed(tokens=40, sessions=10)

    for session in Session.objects.select_related("current_token"):
        newest = session.token_links.order_by("-token__created_at").first().token
        assert session.current_token == newest
        blacklisted = set(
            BlacklistedToken.objects.filter(token__session_link__session=session).values_list(
                "token_id", flat=True
            )
        )
        chain = set(session.token_links.values_list("token_id", flat=True))
        if session.revoked_at is None:
            assert blacklisted == chain - {newest.pk}
        else:
            assert blacklisted == chain
    assert Session.objects.revoked().count() == 1


def test_seed_sessions_live_rows_are_live():
    seed(tokens=20, sessions=5)

    now = timezone.now()
    assert not OutstandingToken.objects.filter(expires_at__lte=now).exists()
    assert Session.objects.filter(expires_at__gt=now).count() == 5


def test_seed_sessions_expired_rows_are_all_expired():
    seed(tokens=20, sessions=5, expired=True)

    now = timezone.now()
    assert not OutstandingToken.objects.filter(expires_at__gt=now).exists()
    assert not Session.objects.filter(expires_at__gt=now).exists()


def test_seed_sessions_users_cannot_log_in():
    seed(tokens=30, sessions=30, users=3)

    users = get_user_model().objects.all()
    assert users.count() == 3
    assert not any(user.has_usable_password() for user in users)


def test_seed_sessions_without_sessions_seeds_bare_tokens():
    seed(tokens=25, sessions=0, batch_size=10)

    assert OutstandingToken.objects.count() == 25
    assert not Session.objects.exists()
    assert not BlacklistedToken.objects.exists()


def test_seed_sessions_twice_adds_rows_without_collisions():
    seed(tokens=10, sessions=2)
    seed(tokens=10, sessions=2)

    assert OutstandingToken.objects.count() == 20
    assert get_user_model().objects.count() == 2


def test_seed_sessions_more_sessions_than_tokens_is_refused():
    with pytest.raises(CommandError, match="--sessions must be <= --tokens"):
        seed(tokens=5, sessions=6)
