"""The user admin: each user's sessions, active first, and revoking all of them."""

from datetime import timedelta

from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.admin.users import INLINE_ROWS
from accounts.clients import Client
from accounts.models import RevokeReason, Session
from tests.conftest import bearer

USERS = reverse("admin:auth_user_changelist")


def user_page(user) -> str:
    return reverse("admin:auth_user_change", args=[user.pk])


def open_session(user, **fields):
    session, pair = services.open_session(user=user, client=Client("192.0.2.10", "test"))
    if fields:
        Session.objects.filter(pk=session.pk).update(**fields)
    return session, pair


def inline_sessions(response) -> list:
    formset = next(
        f for f in response.context["inline_admin_formsets"] if f.formset.model is Session
    )
    return [form.original for form in formset]


def test_user_page_lists_sessions_active_first(admin_client, user):
    now = timezone.now()
    revoked, _ = open_session(user, revoked_at=now, revoked_reason=RevokeReason.LOGOUT)
    older_active, _ = open_session(user, created_at=now - timedelta(hours=2))
    expired, _ = open_session(user, expires_at=now - timedelta(seconds=1))
    newer_active, _ = open_session(user, created_at=now - timedelta(hours=1))

    response = admin_client.get(user_page(user))

    assert response.status_code == 200
    sessions = inline_sessions(response)
    assert sessions[:2] == [newer_active, older_active]
    assert set(sessions[2:]) == {revoked, expired}
    assert reverse("admin:accounts_session_change", args=[newer_active.pk]) in (
        response.content.decode()
    )


def test_user_page_shows_a_bounded_number_of_sessions(admin_client, user):
    for _ in range(INLINE_ROWS + 1):
        open_session(user)

    response = admin_client.get(user_page(user))

    assert len(inline_sessions(response)) == INLINE_ROWS


def test_user_page_still_saves_the_user(admin_client, user):
    open_session(user)
    page = admin_client.get(user_page(user))
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("password", "groups", "user_permissions")
    }
    data.update(first_name="Alice", date_joined_0="2026-01-01", date_joined_1="00:00:00")
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})

    response = admin_client.post(user_page(user), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.first_name == "Alice"
    assert Session.objects.get(user=user).revoked_at is None


def test_revoke_all_sessions_of_selected_users(admin_client, api_client, make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    alice_pairs = [open_session(alice)[1] for _ in range(2)]
    open_session(bob)
    _, carol_pair = open_session(carol)

    response = admin_client.post(
        USERS, {"action": "revoke_all_sessions", "_selected_action": [alice.pk, bob.pk]}
    )

    assert response.status_code == 302
    assert set(Session.objects.revoked().values_list("user__username", flat=True)) == {
        "alice",
        "bob",
    }
    assert LogEntry.objects.count() == 3
    assert [str(m) for m in response.wsgi_request._messages] == [
        "Revoked 3 sessions: their access and refresh tokens are refused now."
    ]
    for pair in alice_pairs:
        refused = api_client.get("/todos", **bearer(pair.access))
        assert refused.json()["error"] == "You have been logged out. Please log in again."
    assert api_client.get("/todos", **bearer(carol_pair.access)).status_code == 200


def test_superuser_can_delete_a_user_with_sessions(admin_client, user):
    open_session(user)
    delete = reverse("admin:auth_user_delete", args=[user.pk])

    confirmation = admin_client.get(delete)
    assert confirmation.context["perms_lacking"] == set()
    response = admin_client.post(delete, {"post": "yes"})

    assert response.status_code == 302
    assert not Session.objects.filter(user_id=user.pk).exists()
