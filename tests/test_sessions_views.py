"""Self-service sessions: list, revoke one, sign out everywhere, change the password."""

import io
import uuid

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Session
from tests.conftest import bearer


def get(client, url, access):
    return client.get(url, **bearer(access))


def post(client, url, body, access=None):
    return client.post(url, body, format="json", **(bearer(access) if access else {}))


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def alive(client, tokens) -> bool:
    return get(client, "/todos", tokens["access_token"]).status_code == 200


@pytest.fixture
def two(user, login):
    """Two sessions of `user` (laptop and phone)."""
    return login(user), login(user)


# --- GET /auth/sessions --------------------------------------------------------------------


def test_a_session_whose_refresh_token_idled_out_is_expired_not_listed(
    api_client, user, two, settings, time_machine
):
    """Idle longer than the refresh token lives: it can never refresh again."""
    laptop, phone = two
    time_machine.move_to(timezone.now() + settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"] / 2)
    laptop = post(api_client, "/auth/refresh", {"refresh_token": laptop["refresh_token"]}).json()
    time_machine.move_to(timezone.now() + settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"] * 0.6)

    idle = Session.objects.get(pk=claims(phone["access_token"])["sid"])
    assert idle.status == "expired" and not idle.is_expired()  # well within its 30 days
    assert (
        post(api_client, "/auth/refresh", {"refresh_token": phone["refresh_token"]}).status_code
        == 401
    )

    laptop = post(api_client, "/auth/refresh", {"refresh_token": laptop["refresh_token"]}).json()
    body = get(api_client, "/auth/sessions", laptop["access_token"]).json()
    assert [s["id"] for s in body] == [claims(laptop["access_token"])["sid"]]
    assert body[0]["status"] == "active"
    assert set(Session.objects.expired()) == {idle}
    assert idle not in Session.objects.active()


def test_list_sessions_shows_both_logins_and_marks_current(api_client, user, two):
    laptop, _phone = two
    response = get(api_client, "/auth/sessions", laptop["access_token"])
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 2
    assert sum(s["current"] for s in body) == 1
    current = next(s for s in body if s["current"])
    assert current["id"] == str(Session.objects.order_by("created_at").first().pk)
    assert set(current) >= {"id", "created_at", "last_refreshed_at", "ip_address", "user_agent"}
    assert current["ip_address"] == "127.0.0.1"


def test_list_sessions_hides_other_users_and_ended_sessions(
    api_client, user, other_user, two, login
):
    login(other_user)
    laptop, phone = two
    post(
        api_client, "/auth/logout", {"refresh_token": phone["refresh_token"]}, phone["access_token"]
    )
    laptop = post(api_client, "/auth/refresh", {"refresh_token": laptop["refresh_token"]}).json()
    body = get(api_client, "/auth/sessions", laptop["access_token"]).json()
    assert [s["current"] for s in body] == [True]


def test_list_sessions_records_user_agent(api_client, user, password):
    tokens = api_client.post(
        "/auth/login",
        {"username": user.username, "password": password},
        format="json",
        HTTP_USER_AGENT="LessonClient/1.0 (Android)",
    ).json()
    body = get(api_client, "/auth/sessions", tokens["access_token"]).json()
    assert body[0]["user_agent"] == "LessonClient/1.0 (Android)"


def test_list_sessions_requires_token_401(api_client, db):
    assert api_client.get("/auth/sessions").status_code == 401


# --- DELETE /auth/sessions/<id> ---------------------------------------------------------------


def test_delete_own_other_session_ends_it_and_keeps_mine(api_client, two):
    laptop, phone = two
    phone_sid = Session.objects.order_by("created_at").last().pk
    response = api_client.delete(f"/auth/sessions/{phone_sid}", **bearer(laptop["access_token"]))
    assert response.status_code == 204
    assert not alive(api_client, phone)
    assert alive(api_client, laptop)
    assert (
        post(api_client, "/auth/refresh", {"refresh_token": phone["refresh_token"]}).status_code
        == 401
    )
    assert Session.objects.get(pk=phone_sid).revoked_reason == "user"


def test_delete_other_users_session_404_and_it_survives(api_client, tokens, other_user, login):
    theirs = login(other_user)
    their_sid = Session.objects.get(user=other_user).pk
    response = api_client.delete(f"/auth/sessions/{their_sid}", **bearer(tokens["access_token"]))
    assert response.status_code == 404
    assert response.json() == {"error": "Session not found", "code": "session_not_found"}
    assert alive(api_client, theirs)


def test_delete_unknown_session_404(api_client, tokens):
    response = api_client.delete(f"/auth/sessions/{uuid.uuid4()}", **bearer(tokens["access_token"]))
    assert response.status_code == 404


def test_delete_own_session_twice_is_idempotent(api_client, two):
    laptop, _ = two
    phone_sid = Session.objects.order_by("created_at").last().pk
    for _ in range(2):
        response = api_client.delete(
            f"/auth/sessions/{phone_sid}", **bearer(laptop["access_token"])
        )
        assert response.status_code == 204


# --- POST /auth/logout-all ---------------------------------------------------------------------


def test_logout_all_ends_every_session(api_client, user, two, other_user, login):
    laptop, phone = two
    theirs = login(other_user)
    response = post(api_client, "/auth/logout-all", {}, laptop["access_token"])
    assert response.status_code == 200
    assert response.json()["revoked"] == 2
    assert not alive(api_client, laptop) and not alive(api_client, phone)
    assert alive(api_client, theirs)
    reasons = Session.objects.filter(user=user).values_list("revoked_reason", flat=True)
    assert set(reasons) == {"logout_all"}


def test_logout_all_keep_current_signs_out_other_devices(api_client, two):
    laptop, phone = two
    response = post(api_client, "/auth/logout-all", {"keep_current": True}, laptop["access_token"])
    assert response.json()["revoked"] == 1
    assert alive(api_client, laptop)
    assert not alive(api_client, phone)
    assert (
        post(api_client, "/auth/refresh", {"refresh_token": laptop["refresh_token"]}).status_code
        == 200
    )


def test_logout_all_keep_current_must_be_boolean_400(api_client, two):
    laptop, phone = two
    response = post(api_client, "/auth/logout-all", {"keep_current": "yes"}, laptop["access_token"])
    assert response.status_code == 400
    assert alive(api_client, phone)


# --- POST /auth/password -------------------------------------------------------------------------


def test_password_change_keeps_current_session_ends_others(api_client, user, two, password):
    laptop, phone = two
    response = post(
        api_client,
        "/auth/password",
        {"old_password": password, "new_password": "a-brand-new-passphrase"},
        laptop["access_token"],
    )
    assert response.status_code == 200
    assert alive(api_client, laptop)
    assert not alive(api_client, phone)
    assert (
        post(api_client, "/auth/refresh", {"refresh_token": phone["refresh_token"]}).status_code
        == 401
    )
    assert Session.objects.get(revoked_at__isnull=False).revoked_reason == "password_change"
    user.refresh_from_db()
    assert user.check_password("a-brand-new-passphrase")


@pytest.mark.parametrize(
    ("old", "new", "code", "says"),
    [
        ("not-it", "a-brand-new-passphrase", "wrong_password", "Current password is incorrect"),
        (None, "123", "invalid_password", "too short"),
    ],
    ids=["wrong-old-password", "weak-new-password"],
)
def test_password_change_refused_400_changes_nothing(
    api_client, user, two, password, old, new, code, says
):
    laptop, phone = two
    body = {"old_password": old or password, "new_password": new}
    response = post(api_client, "/auth/password", body, laptop["access_token"])
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert says in response.json()["error"]
    assert alive(api_client, phone)
    user.refresh_from_db()
    assert user.check_password(password)


def test_set_password_and_save_revokes_all_sessions(api_client, user, two):
    user.set_password("changed-in-code-123")
    user.save()
    assert not any(alive(api_client, t) for t in two)
    assert set(Session.objects.values_list("revoked_reason", flat=True)) == {"password_change"}


def test_changepassword_command_revokes_all_sessions(api_client, user, two, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda *a, **k: "changed-by-command-123")
    call_command("changepassword", user.username, stdout=io.StringIO())
    assert not any(alive(api_client, t) for t in two)


def test_admin_password_form_revokes_all_sessions(client, api_client, user, two, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": "changed-by-admin-123", "password2": "changed-by-admin-123"},
    )
    assert response.status_code == 302
    assert not any(alive(api_client, t) for t in two)


def test_saving_user_without_password_change_keeps_sessions(api_client, user, two):
    user.first_name = "Alice"
    user.save()
    assert all(alive(api_client, t) for t in two)


@pytest.mark.parametrize("sid", ["not-a-uuid", "1234", "%20"])
def test_delete_a_malformed_session_id_404_session_not_found(auth_client, sid):
    response = auth_client.delete(f"/auth/sessions/{sid}")
    assert response.status_code == 404
    assert response.json() == {"error": "Session not found", "code": "session_not_found"}


def test_delete_accepts_any_spelling_of_a_session_id(auth_client):
    from accounts.models import Session

    session = Session.objects.get()
    assert auth_client.delete(f"/auth/sessions/{str(session.pk).upper()}").status_code == 204
