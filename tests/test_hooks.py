"""The hooks that end a user's sessions however the user changes, and the check on them."""

import threading
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connections
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import RevokeReason, SecurityEvent, Session
from tests.conftest import PASSWORD, bearer

LOGGED_OUT = "You have been logged out. Please log in again."
NEW_PASSWORD = "a-brand-new-Passphrase-42"


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


def deactivate_in_the_form(admin_client, user) -> None:
    """Untick "Active" on the user's admin page and save."""
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


def test_deactivating_in_the_admin_form_ends_every_session(api_client, admin_client, user, login):
    pairs = [login(user), login(user)]
    deactivate_in_the_form(admin_client, user)
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


def test_check_warns_without_the_password_change_hook(settings):
    """A warning (a host project runs without it); this project's CI fails on warnings."""
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}
    ]
    with pytest.raises(SystemCheckError, match=r"accounts\.W002"):
        call_command("check", fail_level="WARNING")


def test_check_passes_with_the_hook():
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


# --- a password made unusable, and who acted ---------------------------------------------------


def test_a_password_made_unusable_in_code_ends_every_session(api_client, user, login):
    pairs = [login(user), login(user)]
    user.set_unusable_password()
    user.save()
    for pair in pairs:
        assert todos(api_client, pair["access_token"]).json()["error"] == LOGGED_OUT
        assert refresh(api_client, pair["refresh_token"]).status_code == 401
    event = SecurityEvent.objects.get(kind="password_changed")
    assert event.details == {"revoked_sessions": 2, "password_disabled": True}


def test_disabling_password_login_in_the_admin_ends_every_session_naming_the_operator(
    api_client, admin_client, admin_user, user, login
):
    pairs = [login(user), login(user)]
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"usable_password": "false", "set-password": "", "unset-password": ""},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.has_usable_password()
    for pair in pairs:
        assert todos(api_client, pair["access_token"]).json()["error"] == LOGGED_OUT
    ended = SecurityEvent.objects.filter(kind="session_revoked")
    assert {(e.reason, e.actor) for e in ended} == {("password_change", admin_user)}
    assert SecurityEvent.objects.get(kind="password_changed").actor == admin_user


def test_a_new_password_set_in_the_admin_names_the_operator(admin_client, admin_user, user, tokens):
    admin_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    event = SecurityEvent.objects.get(kind="password_changed")
    assert (event.actor, event.details["revoked_sessions"]) == (admin_user, 1)


@pytest.mark.parametrize("way", ["action", "form"])
def test_an_admin_deactivation_names_the_operator(admin_client, admin_user, user, tokens, way):
    if way == "action":
        admin_client.post(
            reverse("admin:auth_user_changelist"),
            {"action": "deactivate_users", "_selected_action": [user.pk]},
        )
    else:
        deactivate_in_the_form(admin_client, user)
    for kind in ("user_deactivated", "session_revoked"):
        event = SecurityEvent.objects.get(kind=kind)
        assert (event.actor, event.ip_address) == (admin_user, "127.0.0.1")


def test_a_user_added_in_the_admin_records_no_password_change(admin_client):
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "newbie",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "api_sessions-TOTAL_FORMS": "0",
            "api_sessions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="newbie").exists()
    assert not SecurityEvent.objects.filter(kind="password_changed").exists()


def test_the_demo_users_of_a_fresh_database_record_no_password_change(
    db, settings, tmp_path, monkeypatch
):
    from todos.management.commands import seed_demo

    monkeypatch.setattr(seed_demo, "SUPERUSER_FILE", tmp_path / "dev-superuser")
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    demo = get_user_model().objects.get(username="testuser")
    assert demo.check_password("testpass123") and demo.todos.count() == 4
    assert get_user_model().objects.get(username="admin").is_superuser
    assert not SecurityEvent.objects.filter(kind="password_changed").exists()


# --- a login in flight while the account changes ------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["password", "deactivation"])
def test_a_login_checked_before_a_change_that_commits_first_is_refused(
    make_user, monkeypatch, change
):
    """The login hashed the old password; the owner changes it meanwhile: no session."""
    from accounts import services

    user = make_user("owner")
    checked, changed = threading.Event(), threading.Event()
    authenticate = services.authenticate

    def slow_authenticate(request=None, **credentials):
        found = authenticate(request, **credentials)
        checked.set()
        assert changed.wait(timeout=10)
        return found

    monkeypatch.setattr(services, "authenticate", slow_authenticate)

    def attacker():
        try:
            body = {"username": "owner", "password": PASSWORD}
            return APIClient().post("/auth/login", body, format="json").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(attacker)
        assert checked.wait(timeout=10)
        if change == "password":
            user.set_password(NEW_PASSWORD)
        else:
            user.is_active = False
        user.save()
        changed.set()
        status = pending.result(timeout=10)

    assert status == 401
    assert not Session.objects.filter(user=user, revoked_at__isnull=True).exists()
