"""No admin page ever shows an issued access or refresh token, whole or in part."""

import pytest
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import SecurityEvent, Session


@pytest.fixture
def issued(api_client, user, login) -> list[str]:
    """Every token handed out to `user`: two logins, one refresh, one admin revoke later."""
    first, second = login(user), login(user)
    rotated = api_client.post(
        "/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json"
    ).json()
    bodies = (first, second, rotated)
    return [body[key] for body in bodies for key in ("access_token", "refresh_token")]


def secret_parts(token: str) -> list[str]:
    """The token, and its payload and signature: each alone identifies or forges it."""
    _header, payload, signature = token.split(".")
    return [token, payload, signature]


def admin_pages(user) -> list[str]:
    """Every admin page about the user's sessions, tokens and security events, lists and details."""
    pages = [
        reverse("admin:index"),
        reverse("admin:accounts_session_changelist"),
        reverse("admin:accounts_session_changelist") + f"?q={user.username}",
        reverse("admin:accounts_session_changelist") + "?status=revoked",
        reverse("admin:token_blacklist_outstandingtoken_changelist"),
        reverse("admin:token_blacklist_outstandingtoken_changelist") + f"?q={user.username}",
        reverse("admin:token_blacklist_blacklistedtoken_changelist"),
        reverse("admin:accounts_securityevent_changelist"),
        reverse("admin:accounts_securityevent_changelist") + f"?q={user.username}",
        reverse("admin:auth_user_changelist"),
        reverse("admin:auth_user_change", args=[user.pk]),
        reverse("admin:auth_user_history", args=[user.pk]),
        reverse("admin:auth_user_delete", args=[user.pk]),
    ]
    for session in Session.objects.all():
        pages += [
            reverse("admin:accounts_session_change", args=[session.pk]),
            reverse("admin:accounts_session_history", args=[session.pk]),
            reverse("admin:accounts_session_changelist") + f"?q={session.pk}",
        ]
    for token in OutstandingToken.objects.all():
        pages += [
            reverse("admin:token_blacklist_outstandingtoken_change", args=[token.pk]),
            reverse("admin:token_blacklist_outstandingtoken_history", args=[token.pk]),
            reverse("admin:token_blacklist_outstandingtoken_changelist") + f"?q={token.jti}",
        ]
    for blacklisted in BlacklistedToken.objects.all():
        pages += [
            reverse("admin:token_blacklist_blacklistedtoken_change", args=[blacklisted.pk]),
            reverse("admin:token_blacklist_blacklistedtoken_history", args=[blacklisted.pk]),
        ]
    for event in SecurityEvent.objects.all():
        pages.append(reverse("admin:accounts_securityevent_change", args=[event.pk]))
    return pages


def test_no_admin_page_contains_an_issued_token(admin_client, user, issued):
    session = Session.objects.filter(revoked_at__isnull=True).first()
    revoked = admin_client.post(
        reverse("admin:accounts_session_changelist"),
        {"action": "revoke_selected", "_selected_action": [session.pk]},
        follow=True,
    )
    forbidden = [part for token in issued for part in secret_parts(token)]

    pages = admin_pages(user)
    assert {"login", "session_revoked"} <= set(SecurityEvent.objects.values_list("kind", flat=True))
    assert len(pages) > 20
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert not [part for part in forbidden if part in content], url
    assert not [part for part in forbidden if part in revoked.content.decode()]
