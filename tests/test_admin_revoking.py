"""Revoking from the admin: the action and the button end sessions at once, with a trail."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.clients import Client as ApiClient
from accounts.models import RevokeReason, SecurityEvent, Session
from tests.conftest import bearer

CHANGELIST = reverse("admin:accounts_session_changelist")


def change_url(session) -> str:
    return reverse("admin:accounts_session_change", args=[session.pk])


def revoke_url(session) -> str:
    return reverse("admin:accounts_session_revoke", args=[session.pk])


@pytest.fixture
def open_session(db):
    """Open a session for `user` straight through the session service."""

    def make(user):
        return services.open_session(user=user, client=ApiClient("192.0.2.10", "TodoApp/1.0"))

    return make


def revoke_action(client, sessions, **params):
    return client.post(
        CHANGELIST + params.pop("query", ""),
        {"action": "revoke_selected", "_selected_action": [str(s.pk) for s in sessions], **params},
    )


def assert_session_dead(api_client, pair):
    response = api_client.get("/todos", **bearer(pair.access))
    assert response.status_code == 401
    assert response.json()["error"] == "You have been logged out. Please log in again."
    response = api_client.post("/auth/refresh", {"refresh_token": pair.refresh}, format="json")
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid refresh token"


def assert_session_alive(api_client, pair):
    assert api_client.get("/todos", **bearer(pair.access)).status_code == 200
    response = api_client.post("/auth/refresh", {"refresh_token": pair.refresh}, format="json")
    assert response.status_code == 200


def test_revoke_action_ends_only_the_selected_session(admin_client, api_client, user, open_session):
    chosen, chosen_pair = open_session(user)
    _, other_pair = open_session(user)

    response = revoke_action(admin_client, [chosen])

    assert response.status_code == 302
    chosen.refresh_from_db()
    assert chosen.revoked_reason == RevokeReason.ADMIN
    assert_session_dead(api_client, chosen_pair)
    assert_session_alive(api_client, other_pair)


def test_revoke_action_records_admin_log_and_security_record(
    admin_client, admin_user, user, open_session
):
    session, _ = open_session(user)

    revoke_action(admin_client, [session])

    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id, entry.action_flag) == (admin_user, str(session.pk), CHANGE)
    assert entry.get_change_message() == "Revoked the session."
    event = SecurityEvent.objects.get(kind="session_revoked")
    assert (event.user, event.username, event.session_id) == (user, user.username, session.pk)
    assert (event.ip_address, event.reason, event.actor) == ("127.0.0.1", "admin", admin_user)


def test_revoke_action_is_idempotent(admin_client, user, open_session):
    session, _ = open_session(user)
    revoke_action(admin_client, [session])
    revoked_at = Session.objects.get(pk=session.pk).revoked_at

    response = revoke_action(admin_client, [session])

    assert Session.objects.get(pk=session.pk).revoked_at == revoked_at
    assert LogEntry.objects.count() == 1
    assert SecurityEvent.objects.filter(kind="session_revoked").count() == 1
    last_message = list(response.wsgi_request._messages)[-1]
    assert str(last_message) == "No session revoked: the selected ones were already revoked."


def test_revoke_action_leaves_already_ended_sessions_their_reason(admin_client, user, open_session):
    logged_out, _ = open_session(user)
    active, _ = open_session(user)
    Session.objects.filter(pk=logged_out.pk).update(
        revoked_at=timezone.now(), revoked_reason=RevokeReason.LOGOUT
    )

    response = revoke_action(admin_client, [logged_out, active])

    assert dict(Session.objects.filter(user=user).values_list("pk", "revoked_reason")) == {
        logged_out.pk: RevokeReason.LOGOUT,
        active.pk: RevokeReason.ADMIN,
    }
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(active.pk)]
    assert [str(m) for m in response.wsgi_request._messages] == [
        "Revoked 1 session: its access and refresh tokens are refused now."
    ]


def test_revoke_all_matching_a_filter_on_status_revokes_them(admin_client, make_user, open_session):
    alice, bob = make_user("alice"), make_user("bob")
    alice_sessions = [open_session(alice)[0] for _ in range(3)]
    bobs, _ = open_session(bob)

    # The browser sends the page's ticked rows along with select_across.
    revoke_action(
        admin_client, alice_sessions[:1], query="?status=active&q=alice", select_across="1"
    )

    assert set(Session.objects.revoked()) == set(alice_sessions)
    assert set(Session.objects.active().filter(kind="api")) == {bobs}
    assert LogEntry.objects.count() == 3


def test_revoke_button_ends_the_session(admin_client, api_client, user, open_session):
    session, pair = open_session(user)
    page = admin_client.get(change_url(session)).content.decode()
    assert revoke_url(session) in page

    response = admin_client.post(revoke_url(session))

    assert response.status_code == 302
    assert response["Location"] == change_url(session)
    assert_session_dead(api_client, pair)
    assert LogEntry.objects.get().object_id == str(session.pk)
    assert revoke_url(session) not in admin_client.get(change_url(session)).content.decode()


def test_revoke_button_needs_post(admin_client, user, open_session):
    session, _ = open_session(user)

    assert admin_client.get(revoke_url(session)).status_code == 405
    assert Session.objects.get(pk=session.pk).revoked_at is None


def test_revoke_button_needs_a_csrf_token(admin_user, user, open_session):
    session, _ = open_session(user)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)

    assert strict.post(revoke_url(session)).status_code == 403
    assert Session.objects.get(pk=session.pk).revoked_at is None


@pytest.mark.parametrize("object_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_revoke_button_on_an_unknown_session_goes_back_to_the_list(admin_client, db, object_id):
    url = reverse("admin:accounts_session_revoke", args=[object_id])

    response = admin_client.post(url, follow=True)

    assert response.redirect_chain == [(reverse("admin:accounts_session_changelist"), 302)]
    shown = [str(message) for message in response.context["messages"]]
    assert shown == [f'Session with ID "{object_id}" does not exist.']
