"""The hooks that end a user's sessions: deactivation, and the check on the password hook."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse

from accounts.models import RevokeReason, Session
from tests.conftest import bearer

LOGGED_OUT = "You have been logged out. Please log in again."


def todos(client, access):
    return client.get("/todos", **bearer(access))


def refresh(client, token):
    return client.post("/auth/refresh", {"refresh_token": token}, format="json")


def assert_sessions_ended_for_good(client, user, pairs):
    """Every session ended as deactivated, and reactivating the user revives none."""
    assert set(Session.objects.filter(user=user).values_list("revoked_reason", flat=True)) == {
        RevokeReason.USER_DEACTIVATED
    }
    for pair in pairs:
        response = todos(client, pair["access_token"])
        assert response.json()["error"] == "Invalid JWT token: User is inactive"

    user.refresh_from_db()
    user.is_active = True
    user.save()

    for pair in pairs:
        assert todos(client, pair["access_token"]).json()["error"] == LOGGED_OUT
        assert refresh(client, pair["refresh_token"]).status_code == 401


def test_deactivating_with_save_ends_every_session_for_good(api_client, user, login):
    pairs = [login(user), login(user)]
    user.is_active = False
    user.save()
    assert_sessions_ended_for_good(api_client, user, pairs)


def test_deactivating_in_the_admin_form_ends_every_session(api_client, admin_client, user, login):
    pairs = [login(user), login(user)]
    page = reverse("admin:auth_user_change", args=[user.pk])
    form = admin_client.get(page).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(
        {
            "is_active": "",  # unchecked
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "groups": [],
            "user_permissions": [],
            "api_sessions-TOTAL_FORMS": "0",
            "api_sessions-INITIAL_FORMS": "0",
        }
    )
    data.pop("last_login", None)
    data.pop("date_joined", None)
    response = admin_client.post(page, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert_sessions_ended_for_good(api_client, user, pairs)


def test_deactivating_with_the_admin_action_ends_every_session(
    api_client, admin_client, user, login
):
    pairs = [login(user), login(user)]
    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "deactivate_users", "_selected_action": [user.pk]},
        follow=True,
    )
    assert "Deactivated 1 user." in response.content.decode()
    assert_sessions_ended_for_good(api_client, user, pairs)


def test_saving_an_active_user_leaves_its_sessions(api_client, user, tokens):
    user.first_name = "Alice"
    user.save()
    assert todos(api_client, tokens["access_token"]).status_code == 200


def test_saving_other_fields_of_an_inactive_user_costs_no_query(
    user, tokens, django_assert_num_queries
):
    user.is_active = False
    user.save()
    user.first_name = "Alice"
    with django_assert_num_queries(1):  # the UPDATE alone
        user.save(update_fields=["first_name"])


def test_check_fails_without_the_password_change_hook(settings):
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}
    ]
    with pytest.raises(SystemCheckError, match=r"accounts\.E001"):
        call_command("check")


def test_check_passes_with_the_hook():
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()
