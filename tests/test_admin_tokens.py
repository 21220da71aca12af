"""The outstanding and blacklisted token admins: read-only, by jti, revoking sessions."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.admin.tokens import token_fingerprint
from accounts.clients import Client
from accounts.models import RevokeReason, Session
from accounts.refresh import refresh_session
from accounts.services import open_session
from accounts.tokens import fingerprint

OUTSTANDING = reverse("admin:token_blacklist_outstandingtoken_changelist")
BLACKLISTED = reverse("admin:token_blacklist_blacklistedtoken_changelist")


@pytest.fixture
def rotated(user):
    """A session whose first refresh token was rotated out (and so blacklisted)."""
    session, pair = open_session(user=user, client=Client("192.0.2.10", "test"))
    refresh_session(refresh_token=pair.refresh)
    first, second = OutstandingToken.objects.order_by("id")
    return session, first, second


def listed(response) -> list:
    return list(response.context["cl"].result_list)


def test_outstanding_list_is_newest_first_with_session_and_blacklist(admin_client, rotated):
    session, first, second = rotated

    response = admin_client.get(OUTSTANDING)

    assert listed(response) == [second, first]
    content = response.content.decode()
    assert first.jti in content
    assert second.jti in content
    assert reverse("admin:accounts_session_change", args=[session.pk]) in content
    assert 'alt="True"' in content  # the rotated-out token is blacklisted
    assert 'alt="False"' in content  # the current one is not


@pytest.mark.parametrize(
    "term",
    [
        lambda session, token: token.jti,
        lambda session, token: token.jti.upper(),
        lambda session, token: str(session.pk),
        lambda session, token: "alice",
    ],
    ids=["jti", "jti-uppercase", "session-id", "username"],
)
def test_outstanding_search_finds_the_token(admin_client, rotated, make_user, term):
    session, first, _ = rotated
    other, _ = open_session(user=make_user("bob"), client=Client(None, ""))

    response = admin_client.get(OUTSTANDING, {"q": term(session, first)})

    found = listed(response)
    assert first in found
    assert not any(token.session_link.session_id == other.pk for token in found)


@pytest.mark.parametrize("term", ["not-a-jti", "1.2.3.4", "''", "a" * 300])
def test_outstanding_search_with_a_foreign_term_finds_nothing(admin_client, rotated, term):
    response = admin_client.get(OUTSTANDING, {"q": term})

    assert response.status_code == 200
    assert listed(response) == []


def test_outstanding_detail_shows_jti_and_fingerprint_only(admin_client, rotated):
    _, first, _ = rotated

    response = admin_client.get(
        reverse("admin:token_blacklist_outstandingtoken_change", args=[first.pk])
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert first.jti in content
    assert first.token in content  # the stored fingerprint, a SHA-256
    assert "<select" not in content


def test_a_row_holding_a_raw_token_is_shown_hashed():
    raw = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"

    assert token_fingerprint(raw) == fingerprint(raw)
    assert token_fingerprint(fingerprint(raw)) == fingerprint(raw)


@pytest.mark.parametrize("url", [OUTSTANDING, BLACKLISTED])
def test_token_add_pages_do_not_exist(admin_client, db, url):
    assert admin_client.get(url + "add/").status_code == 403


def test_token_pages_offer_no_delete(admin_client, rotated):
    _, first, _ = rotated
    delete = reverse("admin:token_blacklist_outstandingtoken_delete", args=[first.pk])

    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert OutstandingToken.objects.filter(pk=first.pk).exists()


def test_outstanding_action_revokes_the_tokens_sessions(admin_client, rotated, user):
    session, first, _ = rotated
    untouched, _ = open_session(user=user, client=Client(None, ""))

    response = admin_client.post(
        OUTSTANDING, {"action": "revoke_sessions", "_selected_action": [first.pk]}
    )

    assert response.status_code == 302
    assert Session.objects.get(pk=session.pk).revoked_reason == RevokeReason.ADMIN
    assert Session.objects.get(pk=untouched.pk).revoked_at is None
    # Both tokens of the revoked session are now blacklisted: the rotated and the current.
    assert BlacklistedToken.objects.filter(token__session_link__session=session).count() == 2
    assert LogEntry.objects.get().object_id == str(session.pk)


def test_blacklisted_list_shows_jti_user_and_session(admin_client, rotated):
    session, first, _ = rotated

    response = admin_client.get(BLACKLISTED)

    assert [b.token for b in listed(response)] == [first]
    content = response.content.decode()
    assert first.jti in content
    assert "alice" in content
    assert reverse("admin:accounts_session_change", args=[session.pk]) in content


def test_blacklisted_search_by_session_id(admin_client, rotated, make_user):
    session, first, _ = rotated
    _, pair = open_session(user=make_user("bob"), client=Client(None, ""))
    refresh_session(refresh_token=pair.refresh)

    response = admin_client.get(BLACKLISTED, {"q": str(session.pk)})

    assert [b.token for b in listed(response)] == [first]


def test_blacklisted_action_revokes_the_tokens_sessions(admin_client, rotated):
    session, first, _ = rotated

    admin_client.post(
        BLACKLISTED,
        {"action": "revoke_sessions", "_selected_action": [first.blacklistedtoken.pk]},
    )

    assert Session.objects.get(pk=session.pk).revoked_reason == RevokeReason.ADMIN
