"""Every way of ending a user's sessions signs their admin browsers out, on the next request."""

import pytest
from django.urls import reverse

from accounts.models import RevokeReason, SecurityEvent, Session
from tests.conftest import PASSWORD, bearer
from tests.signed_in import (
    LOGGED_OUT,
    admin_session,
    assert_signed_in,
    assert_signed_out,
    assert_tokens_dead,
    make_staff,
    sign_in_to_admin,
)

NEW_PASSWORD = "a-brand-new-Passphrase-42"


@pytest.fixture
def staff(make_user):
    return make_staff(make_user)


@pytest.fixture
def signed_in(staff, login):
    """The staff user signed in twice: an admin browser, and the API (tokens)."""
    return sign_in_to_admin(staff), login(staff)


def test_api_logout_all_signs_the_admin_out(api_client, staff, signed_in):
    browser, tokens = signed_in

    response = api_client.post(
        "/auth/logout-all", {}, format="json", **bearer(tokens["access_token"])
    )

    assert response.json() == {"message": "Logout successful", "revoked": 2}
    assert_signed_out(browser)
    assert_tokens_dead(api_client, tokens)
    assert Session.objects.get(kind="admin").revoked_reason == RevokeReason.LOGOUT_ALL


def test_api_logout_all_keeping_the_current_session_still_signs_the_admin_out(
    api_client, signed_in
):
    browser, tokens = signed_in

    api_client.post(
        "/auth/logout-all", {"keep_current": True}, format="json", **bearer(tokens["access_token"])
    )

    assert_signed_out(browser)
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200


def test_revoking_the_admin_sign_in_through_the_api_signs_it_out(api_client, signed_in):
    browser, tokens = signed_in
    sid = admin_session(browser).pk

    response = api_client.delete(f"/auth/sessions/{sid}", **bearer(tokens["access_token"]))

    assert response.status_code == 204
    assert_signed_out(browser)
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200


def test_superuser_revoke_all_sessions_action_signs_the_admin_out(
    admin_client, api_client, staff, signed_in
):
    browser, tokens = signed_in

    admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "revoke_all_sessions", "_selected_action": [staff.pk]},
    )

    assert_signed_out(browser)
    assert_tokens_dead(api_client, tokens)
    assert_signed_in(admin_client)  # the operator's own sign-in is not the staff user's
    assert Session.objects.get(user=staff, kind="admin").revoked_reason == RevokeReason.ADMIN


def test_session_revoke_button_signs_the_admin_out(admin_client, api_client, signed_in):
    browser, tokens = signed_in
    session = admin_session(browser)

    response = admin_client.post(reverse("admin:accounts_session_revoke", args=[session.pk]))

    assert response.status_code == 302
    assert_signed_out(browser)
    # Only that sign-in: the staff user's API session lives on.
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200


def test_revoke_selected_sessions_action_signs_the_admin_out(admin_client, signed_in):
    browser, _ = signed_in

    admin_client.post(
        reverse("admin:accounts_session_changelist"),
        {"action": "revoke_selected", "_selected_action": [str(admin_session(browser).pk)]},
    )

    assert_signed_out(browser)


def test_password_set_in_the_admin_form_signs_the_admin_out(
    admin_client, api_client, staff, signed_in
):
    browser, tokens = signed_in

    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[staff.pk]),
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert_signed_out(browser)
    assert_tokens_dead(api_client, tokens)
    assert Session.objects.get(kind="admin", user=staff).revoked_reason == (
        RevokeReason.PASSWORD_CHANGE
    )


def test_set_password_and_save_signs_the_admin_out(api_client, staff, signed_in):
    browser, tokens = signed_in

    staff.set_password(NEW_PASSWORD)
    staff.save()

    assert_signed_out(browser)
    assert_tokens_dead(api_client, tokens)
    assert Session.objects.get(kind="admin").revoked_reason == RevokeReason.PASSWORD_CHANGE


def test_password_change_through_the_api_signs_the_admin_out(api_client, signed_in):
    browser, tokens = signed_in

    response = api_client.post(
        "/auth/password",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
        **bearer(tokens["access_token"]),
    )

    assert response.status_code == 200
    assert_signed_out(browser)
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200


@pytest.mark.parametrize("way", ["save", "action"])
def test_deactivation_signs_the_admin_out_for_good(admin_client, api_client, staff, signed_in, way):
    browser, tokens = signed_in

    if way == "save":
        staff.is_active = False
        staff.save()
    else:
        admin_client.post(
            reverse("admin:auth_user_changelist"),
            {"action": "deactivate_users", "_selected_action": [staff.pk]},
        )
    staff.refresh_from_db()
    staff.is_active = True
    staff.save()

    # Reactivated, and still signed out: the sign-in was revoked, not merely refused.
    assert_signed_out(browser)
    assert_tokens_dead(api_client, tokens)
    assert Session.objects.get(kind="admin", user=staff).revoked_reason == (
        RevokeReason.USER_DEACTIVATED
    )


def test_session_limit_ends_the_oldest_admin_sign_in(api_client, staff, login, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_LIMIT_PER_USER": 2}
    browser = sign_in_to_admin(staff)
    login(staff)
    assert_signed_in(browser)

    login(staff)

    assert_signed_out(browser)
    assert Session.objects.get(kind="admin").revoked_reason == RevokeReason.SESSION_LIMIT


def test_an_admin_sign_in_counts_toward_the_session_limit(api_client, staff, login, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_LIMIT_PER_USER": 1}
    oldest = login(staff)

    browser = sign_in_to_admin(staff)

    assert_signed_in(browser)
    assert api_client.get("/todos", **bearer(oldest["access_token"])).json()["error"] == LOGGED_OUT


# --- the admin's own "change my password" --------------------------------------------------------


def test_own_password_change_in_the_admin_keeps_this_sign_in_and_ends_the_others(
    api_client, staff, signed_in
):
    browser, tokens = signed_in
    other_browser = sign_in_to_admin(staff, ip="203.0.113.5")
    current = admin_session(browser)

    response = browser.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:password_change_done")
    assert_signed_in(browser)
    current.refresh_from_db()
    assert current.status == "active"
    assert_signed_out(other_browser)
    assert_tokens_dead(api_client, tokens)
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD)
    event = SecurityEvent.objects.get(kind="password_changed")
    assert (event.session_id, event.details["revoked_sessions"]) == (current.pk, 2)


def test_own_password_change_refused_changes_nothing(api_client, staff, signed_in):
    browser, tokens = signed_in

    response = browser.post(
        reverse("admin:password_change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    assert_signed_in(browser)
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)
