"""The security record: which action writes which event, transactions, and who reads it."""

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.clients import Client
from accounts.models import RevokeReason, SecurityEvent, Session
from accounts.refresh import refresh_session
from accounts.services import open_session
from tests.conftest import PASSWORD, bearer
from tests.querycount import QueryCounter

NEW_PASSWORD = "a-brand-new-Passphrase-42"
PHONE = "TodoApp/2.3 (Android 14; Pixel 8) okhttp/4.12.0"


@pytest.fixture
def recorded():
    """Run an action; return the (kind, reason) of each event it wrote, oldest first."""

    def run(action) -> list[tuple[str, str]]:
        last = SecurityEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        action()
        return list(
            SecurityEvent.objects.filter(id__gt=last).order_by("id").values_list("kind", "reason")
        )

    return run


def post(client, path, body, access=None):
    headers = bearer(access) if access else {}
    return client.post(path, body, format="json", **headers)


def refresh(client, token):
    return post(client, "/auth/refresh", {"refresh_token": token})


# --- each kind, written by its action and by nothing else -----------------------------------


def test_signup_login_and_a_wrong_password_each_write_their_own(api_client, recorded, db):
    body = {"username": "carol", "password": NEW_PASSWORD}
    assert recorded(lambda: post(api_client, "/auth/signup", body)) == [("signup", "")]
    assert recorded(lambda: post(api_client, "/auth/login", body)) == [("login", "")]
    body["password"] = "wrong"
    assert recorded(lambda: post(api_client, "/auth/login", body)) == [
        ("login_failed", "invalid_credentials")
    ]


def test_the_failure_that_reaches_the_limit_also_writes_the_lockout(
    api_client, user, recorded, settings
):
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login_failure": "2/minute"},
    }
    body = {"username": "alice", "password": "wrong"}
    post(api_client, "/auth/login", body)
    assert recorded(lambda: post(api_client, "/auth/login", body)) == [
        ("login_failed", "invalid_credentials"),
        ("locked_out", "too_many_failures"),
    ]
    # Refused unheard while locked: no password was checked, nothing more is written.
    assert recorded(lambda: post(api_client, "/auth/login", body)) == []


def test_rotation_writes_nothing_and_a_retry_writes_the_forgiven_replay(
    api_client, tokens, recorded
):
    assert recorded(lambda: refresh(api_client, tokens["refresh_token"])) == []
    assert recorded(lambda: refresh(api_client, tokens["refresh_token"])) == [
        ("refresh_replayed", "")
    ]


def test_reuse_writes_the_detection_and_the_revocation(api_client, tokens, recorded):
    second = refresh(api_client, tokens["refresh_token"]).json()
    refresh(api_client, second["refresh_token"])
    assert recorded(lambda: refresh(api_client, tokens["refresh_token"])) == [
        ("reuse_detected", ""),
        ("session_revoked", RevokeReason.REUSE_DETECTED),
    ]


def test_each_way_a_session_ends_writes_its_reason(api_client, user, login, recorded):
    first, second, third, fourth = (login(user) for _ in range(4))
    logout = {"refresh_token": first["refresh_token"]}
    assert recorded(lambda: post(api_client, "/auth/logout", logout, first["access_token"])) == [
        ("session_revoked", RevokeReason.LOGOUT)
    ]
    sid = Session.objects.filter(revoked_at__isnull=True).order_by("created_at").first().pk
    delete = lambda: api_client.delete(  # noqa: E731
        f"/auth/sessions/{sid}", **bearer(fourth["access_token"])
    )
    assert recorded(delete) == [("session_revoked", RevokeReason.USER)]
    keep = {"keep_current": True}
    assert recorded(lambda: post(api_client, "/auth/logout-all", keep, fourth["access_token"])) == [
        ("session_revoked", RevokeReason.LOGOUT_ALL)
    ]
    assert second and third


def test_password_change_writes_the_change_and_each_ended_session(
    api_client, user, login, recorded
):
    caller, other = login(user), login(user)
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert recorded(lambda: post(api_client, "/auth/password", body, caller["access_token"])) == [
        ("session_revoked", RevokeReason.PASSWORD_CHANGE),
        ("password_changed", ""),
    ]
    assert other


def test_deactivation_writes_its_event_once(user, tokens, recorded):
    def deactivate():
        user.is_active = False
        user.save()

    assert recorded(deactivate) == [
        ("session_revoked", RevokeReason.USER_DEACTIVATED),
        ("user_deactivated", ""),
    ]
    assert recorded(lambda: user.save()) == []  # already inactive: nothing new


def test_an_admin_revocation_names_the_staff_user(admin_client, admin_user, user, tokens):
    session = Session.objects.get(user=user)
    admin_client.post(
        reverse("admin:accounts_session_changelist"),
        {"action": "revoke_selected", "_selected_action": [session.pk]},
    )
    event = SecurityEvent.objects.get(kind="session_revoked")
    assert (event.reason, event.actor, event.user) == (RevokeReason.ADMIN, admin_user, user)


OPERATOR_BROWSER = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def test_a_user_reads_an_admin_revocation_as_an_administrators_without_where_from(
    admin_client, user, login, api_client
):
    revoked = login(user)
    session = Session.objects.get(user=user)
    admin_client.post(
        reverse("admin:accounts_session_changelist"),
        {"action": "revoke_selected", "_selected_action": [session.pk]},
        REMOTE_ADDR="198.51.100.77",
        HTTP_USER_AGENT=OPERATOR_BROWSER,
    )
    assert api_client.get("/todos", **bearer(revoked["access_token"])).status_code == 401
    fresh = login(user)

    events = api_client.get("/auth/events", **bearer(fresh["access_token"])).json()

    [ended] = [event for event in events if event["kind"] == "session_revoked"]
    assert ended["actor"] == "an administrator" and ended["by_administrator"] is True
    assert ended["ip_address"] is None and ended["device"] == ""
    assert "198.51.100.77" not in str(events) and "Firefox" not in str(events)
    # The user's own sign-ins still say where they came from.
    assert all(e["ip_address"] == "127.0.0.1" for e in events if e["kind"] == "login")
    assert all(e["actor"] is None for e in events if e["kind"] == "login")
    # The admin's record keeps the operator's address and device.
    row = SecurityEvent.objects.get(kind="session_revoked")
    assert (row.ip_address, row.device) == ("198.51.100.77", "Firefox on Ubuntu")
    page = admin_client.get(reverse("admin:accounts_securityevent_changelist")).content.decode()
    assert "198.51.100.77" in page


def test_a_staff_user_ending_their_own_session_in_the_admin_reads_as_their_own(
    admin_client, admin_user, login, api_client
):
    login(admin_user, "password")
    session = Session.objects.get(user=admin_user, kind="api")
    admin_client.post(
        reverse("admin:accounts_session_changelist"),
        {"action": "revoke_selected", "_selected_action": [session.pk]},
    )
    fresh = login(admin_user, "password")
    events = api_client.get("/auth/events", **bearer(fresh["access_token"])).json()
    [ended] = [event for event in events if event["kind"] == "session_revoked"]
    assert ended["actor"] is None and ended["ip_address"] == "127.0.0.1"


def test_reading_writes_nothing(auth_client, recorded):
    for path in ("/todos", "/auth/sessions", "/auth/events"):
        assert recorded(lambda path=path: auth_client.get(path)) == []


# --- transactions --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_refresh_writes_no_event(api_client, make_user, login, monkeypatch, caplog):
    """The reuse detection is written, then the revocation fails: neither stays."""
    from accounts.models import SessionQuerySet

    tokens = login(make_user("rollback"))
    second = refresh(api_client, tokens["refresh_token"]).json()
    refresh(api_client, second["refresh_token"])
    before = SecurityEvent.objects.count()

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away mid-transaction")

    monkeypatch.setattr(SessionQuerySet, "revoke", fail)
    with pytest.raises(RuntimeError):
        refresh_session(refresh_token=tokens["refresh_token"])

    assert SecurityEvent.objects.count() == before
    assert Session.objects.get().revoked_at is None
    assert not [
        r for r in caplog.records if getattr(r, "security", {}).get("event") == "reuse_detected"
    ]


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_always_has_its_event_and_its_log_line(make_user, login, caplog):
    user = make_user("committed")
    login(user)
    session = Session.objects.get()
    Session.objects.filter(pk=session.pk).revoke(RevokeReason.ADMIN)
    assert SecurityEvent.objects.filter(kind="session_revoked", session_id=session.pk).exists()
    logged = [getattr(r, "security", {}) for r in caplog.records]
    assert {"event": "session_revoked", "sid": str(session.pk)}.items() <= next(
        line for line in logged if line.get("event") == "session_revoked"
    ).items()


# --- what is kept ------------------------------------------------------------------------------


def test_an_event_keeps_address_device_and_session(user, recorded):
    session, _ = open_session(user=user, client=Client("203.0.113.5", PHONE))
    Session.objects.filter(pk=session.pk).revoke(
        RevokeReason.LOGOUT, client=Client("203.0.113.6", PHONE)
    )
    event = SecurityEvent.objects.get(kind="session_revoked")
    assert (event.ip_address, event.device, event.session_id) == (
        "203.0.113.6",
        "okhttp on Android",
        session.pk,
    )
    assert (event.user, event.username) == (user, "alice")


def test_a_deleted_users_events_stay_under_the_name_they_had(user, tokens):
    user.delete()
    event = SecurityEvent.objects.get(kind="login")
    assert (event.user, event.username) == (None, "alice")


def test_events_are_never_changed(user, tokens):
    event = SecurityEvent.objects.get(kind="login")
    event.reason = "tampered"
    with pytest.raises(ValueError, match="never changed"):
        event.save()


# --- GET /auth/events --------------------------------------------------------------------------


def test_a_user_reads_only_their_own_events_newest_first(api_client, user, other_user, login):
    mine = login(user)
    login(other_user)
    post(api_client, "/auth/login", {"username": "alice", "password": "wrong"})

    response = api_client.get("/auth/events", **bearer(mine["access_token"]))

    assert response.status_code == 200
    events = response.json()
    assert [e["kind"] for e in events] == ["login_failed", "login"]
    assert events[0]["door"] == "api_login" and events[1]["door"] is None
    assert events[1]["session_id"] == str(Session.objects.filter(user=user).get().pk)
    assert response["X-Total-Count"] == "2"
    assert {e["id"] for e in events} == set(
        SecurityEvent.objects.filter(user=user).values_list("id", flat=True)
    )


def test_events_are_paginated_by_default(api_client, user, login):
    tokens = [login(user) for _ in range(22)][-1]
    first = api_client.get("/auth/events", **bearer(tokens["access_token"]))
    assert len(first.json()) == 20 and first["X-Total-Count"] == "22"
    assert 'rel="next"' in first["Link"]
    second = api_client.get("/auth/events?page=2", **bearer(tokens["access_token"]))
    assert len(second.json()) == 2


def test_events_need_a_token(api_client, db):
    assert api_client.get("/auth/events").status_code == 401


# --- the session limit -------------------------------------------------------------------------


def test_past_the_limit_a_login_ends_the_oldest_session(api_client, user, login, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_LIMIT_PER_USER": 2}
    oldest, middle = login(user), login(user)
    newest = login(user)

    assert api_client.get("/todos", **bearer(oldest["access_token"])).status_code == 401
    for kept in (middle, newest):
        assert api_client.get("/todos", **bearer(kept["access_token"])).status_code == 200
    ended = Session.objects.get(revoked_at__isnull=False)
    assert ended.revoked_reason == RevokeReason.SESSION_LIMIT
    assert SecurityEvent.objects.filter(kind="session_revoked", reason="session_limit").count() == 1


def test_without_a_limit_sessions_pile_up(user, login):
    for _ in range(5):
        login(user)
    assert Session.objects.active().filter(user=user).count() == 5


# --- budgets -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("name", "budget"),
    # login: the user, then one transaction: the user row locked and re-read, token,
    # session, link, event, and last_login (Django's update_last_login, on
    # user_logged_in). logout: lock, revoke, blacklist, the receivers of session events
    # (none here), event, in one transaction.
    [("login", 7), ("logout", 5)],
)
def test_recording_adds_one_query_in_the_same_transaction(make_user, password, name, budget):
    user = make_user("budget")
    client = APIClient()
    tokens = post(client, "/auth/login", {"username": "budget", "password": password}).json()
    with QueryCounter(connection) as counted:
        if name == "login":
            response = post(client, "/auth/login", {"username": "budget", "password": password})
        else:
            body = {"refresh_token": tokens["refresh_token"]}
            response = post(client, "/auth/logout", body, tokens["access_token"])
    assert response.status_code == 200
    # Authentication's own read aside (logout), everything runs in one transaction.
    assert counted.queries - (name == "logout") == budget, counted.summary()
    assert counted.commits == 1, counted.summary()
    assert sum("accounts_securityevent" in s.sql for s in counted.statements) == 1
    assert user
