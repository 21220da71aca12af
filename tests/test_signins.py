"""Admin sign-ins are sessions: opened at login, checked per request, refused as tokens, shown."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import user_logged_in
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import RevokeReason, SecurityEvent, Session, SessionKind
from accounts.signins import SESSION_ID_KEY
from accounts.tokens import mint_pair
from tests.conftest import PASSWORD, bearer
from tests.signed_in import (
    ADMIN,
    FIREFOX,
    LOGIN,
    admin_session,
    assert_signed_in,
    assert_signed_out,
    make_staff,
    sign_in_to_admin,
)


@pytest.fixture
def staff(make_user):
    return make_staff(make_user)


@pytest.fixture
def signed_in(staff, login):
    """The staff user signed in twice: an admin browser, and the API (tokens)."""
    return sign_in_to_admin(staff), login(staff)


# --- opening -----------------------------------------------------------------------------------


def test_admin_sign_in_opens_an_admin_session_with_its_client(staff, settings, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    settings.SESSION_COOKIE_AGE = 3600

    browser = sign_in_to_admin(staff)

    session = admin_session(browser)
    now = timezone.now()
    assert (session.user, session.kind) == (staff, SessionKind.ADMIN)
    assert (session.current_token, session.current_jti) == (None, "")
    assert (session.ip_address, session.user_agent) == ("198.51.100.7", FIREFOX)
    assert session.device == "Firefox on Ubuntu"
    assert session.expires_at == session.idle_expires_at == now + timedelta(hours=1)
    assert session.status == "active"
    assert_signed_in(browser)


def test_admin_session_lifetime_is_capped_by_the_absolute_lifetime(staff, settings, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    settings.SESSION_COOKIE_AGE = 14 * 24 * 3600
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=2)}

    session = admin_session(sign_in_to_admin(staff))

    assert session.expires_at == session.idle_expires_at == timezone.now() + timedelta(hours=2)


def test_admin_sign_in_records_one_login_event_naming_its_session(staff):
    browser = sign_in_to_admin(staff)

    [event] = SecurityEvent.objects.filter(kind="login")
    assert (event.user, event.session_id) == (staff, admin_session(browser).pk)
    assert (event.ip_address, event.device) == ("198.51.100.7", "Firefox on Ubuntu")
    assert event.details == {"door": "admin_login"}


def test_any_django_login_opens_a_session(staff):
    # force_login goes through django.contrib.auth.login, as any login view of a host
    # project does: the signal, not the admin's form, opens the session.
    browser = Client()
    browser.force_login(staff)

    assert admin_session(browser).kind == SessionKind.ADMIN
    assert SecurityEvent.objects.filter(kind="login", user=staff).count() == 1


def test_signing_in_again_in_the_same_browser_ends_the_replaced_sign_in(staff):
    browser = sign_in_to_admin(staff)
    first = admin_session(browser)
    browser.post(LOGIN, {"username": staff.username, "password": PASSWORD, "next": ADMIN})

    first.refresh_from_db()
    assert first.revoked_reason == RevokeReason.LOGOUT
    assert admin_session(browser).status == "active"
    assert_signed_in(browser)


def test_an_expired_admin_sign_in_is_signed_out_and_not_marked_revoked(
    staff, settings, time_machine
):
    settings.SESSION_COOKIE_AGE = 14 * 24 * 3600
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=1)}
    time_machine.move_to(timezone.now(), tick=False)
    browser = sign_in_to_admin(staff)

    time_machine.shift(timedelta(hours=1))

    assert_signed_out(browser)
    session = Session.objects.get(kind="admin")
    assert (session.revoked_at, session.status) == (None, "expired")


def test_admin_log_out_ends_its_session(staff):
    browser = sign_in_to_admin(staff)
    session = admin_session(browser)

    response = browser.post(reverse("admin:logout"))

    assert response.status_code == 200
    session.refresh_from_db()
    assert session.revoked_reason == RevokeReason.LOGOUT
    event = SecurityEvent.objects.get(kind="session_revoked")
    assert (event.session_id, event.reason, event.ip_address) == (
        session.pk,
        "logout",
        "198.51.100.7",
    )
    assert_signed_out(browser)


def test_a_django_session_without_a_session_id_is_signed_out(staff):
    """A browser signed in before sign-ins were sessions: its Django session names none."""
    browser = sign_in_to_admin(staff)
    stored = browser.session
    del stored[SESSION_ID_KEY]
    stored.save()

    assert_signed_out(browser)


@pytest.mark.parametrize("value", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_django_session_naming_no_known_session_is_signed_out(staff, value):
    browser = sign_in_to_admin(staff)
    stored = browser.session
    stored[SESSION_ID_KEY] = value
    stored.save()

    assert_signed_out(browser)


def test_a_django_session_naming_another_users_sign_in_is_signed_out(staff, make_user):
    other = make_user("other", is_staff=True)
    theirs = admin_session(sign_in_to_admin(other))
    browser = sign_in_to_admin(staff)
    stored = browser.session
    stored[SESSION_ID_KEY] = str(theirs.pk)
    stored.save()

    assert_signed_out(browser)
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


# --- the bearer API never takes an admin sign-in ------------------------------------------------


def forged_pair(session):
    """A token pair naming an admin sign-in, signed with our key: what no code path mints."""
    pair, _ = mint_pair(session=session, issued_at=timezone.now())
    return pair


def test_bearer_token_naming_an_admin_sign_in_is_refused(api_client, staff):
    session = admin_session(sign_in_to_admin(staff))

    response = api_client.get("/todos", **bearer(forged_pair(session).access))

    assert response.status_code == 401
    assert response.json()["error"] == "Invalid JWT token: Unknown session"


def test_refresh_naming_an_admin_sign_in_is_refused_and_ends_nothing(api_client, staff):
    browser = sign_in_to_admin(staff)
    session = admin_session(browser)

    response = api_client.post(
        "/auth/refresh", {"refresh_token": forged_pair(session).refresh}, format="json"
    )

    assert (response.status_code, response.json()["error"]) == (401, "Invalid refresh token")
    session.refresh_from_db()
    assert (session.revoked_at, session.current_jti) == (None, "")
    assert_signed_in(browser)


# --- where it shows ----------------------------------------------------------------------------


def test_sessions_list_shows_admin_sign_ins_with_their_kind(api_client, signed_in):
    browser, tokens = signed_in

    listed = api_client.get("/auth/sessions", **bearer(tokens["access_token"])).json()

    assert sorted((s["kind"], s["current"]) for s in listed) == [("admin", False), ("api", True)]
    [admin] = [s for s in listed if s["kind"] == "admin"]
    assert (admin["id"], admin["device"]) == (str(admin_session(browser).pk), "Firefox on Ubuntu")


def test_sessions_changelist_shows_and_filters_the_kind(admin_client, staff, signed_in):
    browser, _ = signed_in
    changelist = reverse("admin:accounts_session_changelist")

    page = admin_client.get(changelist, {"q": "staff"})
    admins = admin_client.get(changelist, {"kind__exact": "admin", "q": "staff"})

    assert '<th scope="col" class="column-kind_name">' in page.content.decode()
    assert {s.kind for s in page.context["cl"].result_list} == {"api", "admin"}
    assert list(admins.context["cl"].result_list) == [admin_session(browser)]


def test_user_page_lists_admin_sign_ins(admin_client, staff, signed_in):
    page = admin_client.get(reverse("admin:auth_user_change", args=[staff.pk]))

    formset = next(f for f in page.context["inline_admin_formsets"] if f.formset.model is Session)
    assert {form.original.kind for form in formset} == {"api", "admin"}
    assert "Sessions: API and admin sign-ins" in page.content.decode()


def test_admin_sign_in_page_says_it_has_no_tokens(admin_client, staff):
    session = admin_session(sign_in_to_admin(staff))

    page = admin_client.get(reverse("admin:accounts_session_change", args=[session.pk]))

    assert "an admin sign-in holds Django&#x27;s session cookie, not tokens" in (
        page.content.decode()
    )


# --- cost, and the check that keeps it in place -------------------------------------------------


def test_signed_in_request_checks_its_session_with_one_query_by_primary_key(staff):
    browser = sign_in_to_admin(staff)
    browser.get(ADMIN)

    with CaptureQueriesContext(connection) as queries:
        assert browser.get(ADMIN).status_code == 200

    checks = [q["sql"] for q in queries if '"accounts_session"' in q["sql"]]
    assert len(checks) == 1
    assert '"accounts_session"."id" =' in checks[0]


def test_bearer_request_reads_no_django_session(api_client, tokens, django_assert_num_queries):
    # The session and its user, in one query; then the todos.
    with django_assert_num_queries(2):
        assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200


def test_check_warns_without_the_sign_in_middleware(settings):
    """A warning (a host project runs without it); this project's CI fails on warnings."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.startswith("accounts.")]
    with pytest.raises(SystemCheckError, match=r"accounts\.W003"):
        call_command("check", fail_level="WARNING")


def test_check_fails_with_the_middleware_before_authentication(settings):
    middleware = [m for m in settings.MIDDLEWARE if not m.startswith("accounts.")]
    middleware.insert(0, "accounts.signins.SignInSessionMiddleware")
    settings.MIDDLEWARE = middleware
    with pytest.raises(SystemCheckError, match=r"accounts\.E002"):
        call_command("check")


def test_check_passes_with_the_middleware_in_place():
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def test_a_login_signal_without_a_request_opens_nothing(staff):
    user_logged_in.send(sender=type(staff), request=None, user=staff)

    assert not Session.objects.exists()
