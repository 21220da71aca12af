"""Who may revoke: staff with the session change permission, and superusers only."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from accounts.clients import Client as ApiClient
from accounts.models import RevokeReason, Session
from accounts.refresh import refresh_session
from accounts.services import open_session

SESSIONS = reverse("admin:accounts_session_changelist")
OUTSTANDING = reverse("admin:token_blacklist_outstandingtoken_changelist")
BLACKLISTED = reverse("admin:token_blacklist_blacklistedtoken_changelist")
USERS = reverse("admin:auth_user_changelist")


@pytest.fixture
def staff_client(make_user):
    """A signed-in staff member holding exactly the given permissions."""

    def make(*codenames: str) -> Client:
        staff = make_user("operator", is_staff=True)
        staff.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client = Client()
        client.force_login(staff)
        return client

    return make


@pytest.fixture
def victim_session(user):
    """An active session of `user`, with one rotated-out (blacklisted) token."""
    session, pair = open_session(user=user, client=ApiClient("192.0.2.10", "test"))
    refresh_session(refresh_token=pair.refresh)
    return session


VIEW_ONLY = ("view_session", "view_outstandingtoken", "view_blacklistedtoken", "view_user")
MAY_REVOKE = (*VIEW_ONLY, "change_session")


def action_names(response) -> list[str]:
    """The actions the changelist offers; no form at all when it offers none."""
    form = response.context["action_form"]
    return [name for name, _ in form.fields["action"].choices if name] if form else []


def forged_actions(victim):
    """The revoke POSTs a view-only operator could forge, one per admin."""
    token = victim.token_links.order_by("token_id").first().token
    return [
        (SESSIONS, "revoke_selected", victim.pk),
        (OUTSTANDING, "revoke_sessions", token.pk),
        (BLACKLISTED, "revoke_sessions", token.blacklistedtoken.pk),
        (USERS, "revoke_all_sessions", victim.user_id),
    ]


def test_view_only_staff_sees_no_revoke_action(staff_client, victim_session):
    client = staff_client(*VIEW_ONLY)

    for url, _, _ in forged_actions(victim_session):
        response = client.get(url)
        assert response.status_code == 200
        assert action_names(response) == []
        assert "revoke_" not in response.content.decode()


def test_view_only_staff_sees_no_revoke_button(staff_client, victim_session):
    client = staff_client(*VIEW_ONLY)

    page = client.get(reverse("admin:accounts_session_change", args=[victim_session.pk]))

    assert page.status_code == 200
    revoke = reverse("admin:accounts_session_revoke", args=[victim_session.pk])
    assert revoke not in page.content.decode()


def test_view_only_staff_forged_actions_revoke_nothing(staff_client, victim_session):
    client = staff_client(*VIEW_ONLY)

    for url, action, pk in forged_actions(victim_session):
        response = client.post(url, {"action": action, "_selected_action": [pk]})
        assert response.status_code in (200, 302)
        victim_session.refresh_from_db()
        assert victim_session.revoked_at is None, url


def test_view_only_staff_forged_button_is_refused(staff_client, victim_session):
    client = staff_client(*VIEW_ONLY)

    response = client.post(reverse("admin:accounts_session_revoke", args=[victim_session.pk]))

    assert response.status_code == 403
    victim_session.refresh_from_db()
    assert victim_session.revoked_at is None


def test_staff_without_session_permissions_cannot_see_sessions(staff_client, victim_session):
    client = staff_client("view_user")

    assert client.get(SESSIONS).status_code == 403
    user_page = client.get(reverse("admin:auth_user_change", args=[victim_session.user_id]))
    assert user_page.status_code == 200
    assert str(victim_session.pk) not in user_page.content.decode()


def test_staff_with_change_permission_sees_revoke_everywhere(staff_client, victim_session):
    client = staff_client(*MAY_REVOKE)

    for url, action, _ in forged_actions(victim_session):
        assert action_names(client.get(url)) == [action]
    page = client.get(reverse("admin:accounts_session_change", args=[victim_session.pk]))
    assert reverse("admin:accounts_session_revoke", args=[victim_session.pk]) in (
        page.content.decode()
    )


@pytest.mark.parametrize("admin_index", range(4))
def test_staff_with_change_permission_can_revoke_with_each_action(
    staff_client, victim_session, admin_index
):
    client = staff_client(*MAY_REVOKE)
    url, action, pk = forged_actions(victim_session)[admin_index]

    client.post(url, {"action": action, "_selected_action": [pk]})

    victim_session.refresh_from_db()
    assert victim_session.revoked_reason == RevokeReason.ADMIN


def test_staff_with_change_permission_can_revoke_with_the_button(staff_client, victim_session):
    client = staff_client(*MAY_REVOKE)

    response = client.post(reverse("admin:accounts_session_revoke", args=[victim_session.pk]))

    assert response.status_code == 302
    victim_session.refresh_from_db()
    assert victim_session.revoked_reason == RevokeReason.ADMIN


def test_change_permission_still_allows_no_edit(staff_client, victim_session):
    client = staff_client(*MAY_REVOKE)
    url = reverse("admin:accounts_session_change", args=[victim_session.pk])

    assert client.post(url, {"ip_address": "203.0.113.1"}).status_code == 403
    assert Session.objects.get(pk=victim_session.pk).ip_address == "192.0.2.10"


def test_superuser_may_revoke(admin_client, victim_session):
    for url, action, _ in forged_actions(victim_session):
        assert action in action_names(admin_client.get(url))

    admin_client.post(reverse("admin:accounts_session_revoke", args=[victim_session.pk]))

    victim_session.refresh_from_db()
    assert victim_session.revoked_reason == RevokeReason.ADMIN


def test_non_staff_is_sent_to_the_login_page(client, user, victim_session):
    client.force_login(user)

    response = client.post(reverse("admin:accounts_session_revoke", args=[victim_session.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    victim_session.refresh_from_db()
    assert victim_session.revoked_at is None
