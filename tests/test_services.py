"""The session service: rotation, reuse detection, grace, lifetimes, and no token at rest."""

from datetime import timedelta

import jwt
import pytest
from django.db import connection
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import Session
from accounts.tokens import fingerprint
from tests.conftest import bearer
from tests.querycount import QueryCounter


def refresh(client, token):
    return client.post("/auth/refresh", {"refresh_token": token}, format="json")


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


# --- rotation and reuse detection -------------------------------------------------------


def test_refresh_blacklists_old_token_and_records_new(api_client, tokens):
    new = refresh(api_client, tokens["refresh_token"]).json()
    old_jti, new_jti = claims(tokens["refresh_token"])["jti"], claims(new["refresh_token"])["jti"]
    assert BlacklistedToken.objects.filter(token__jti=old_jti).exists()
    assert not BlacklistedToken.objects.filter(token__jti=new_jti).exists()
    session = Session.objects.get()
    assert session.current_token.jti == session.current_jti == new_jti
    assert session.previous_jti == old_jti
    assert sorted(session.token_links.values_list("token__jti", flat=True)) == sorted(
        [old_jti, new_jti]
    )


def test_replayed_rotated_token_revokes_whole_session(api_client, tokens, caplog):
    new = refresh(api_client, tokens["refresh_token"]).json()
    newest = refresh(api_client, new["refresh_token"]).json()

    replay = refresh(api_client, tokens["refresh_token"])  # the thief's (or victim's) old copy

    assert replay.status_code == 401
    assert replay.json()["error"] == "Invalid refresh token"
    session = Session.objects.get()
    assert session.revoked_reason == "reuse_detected"
    # The family's newest tokens die at once: access on the next request, refresh too.
    assert (
        api_client.get("/todos", **bearer(newest["access_token"])).json()["code"]
        == "session_revoked"
    )
    assert refresh(api_client, newest["refresh_token"]).status_code == 401
    assert BlacklistedToken.objects.filter(
        token__jti=claims(newest["refresh_token"])["jti"]
    ).exists()
    assert any(getattr(r, "security", {}).get("reason") == "reuse_detected" for r in caplog.records)


def test_reuse_in_one_session_leaves_other_sessions_alive(api_client, user, login):
    victim, other = login(user), login(user)
    refresh(api_client, victim["refresh_token"])
    refresh(api_client, victim["refresh_token"])
    assert api_client.get("/todos", **bearer(other["access_token"])).status_code == 200


def test_grace_window_refuses_predecessor_without_revoking(
    api_client, user, login, settings, time_machine
):
    settings.REFRESH_REUSE_GRACE_SECONDS = 30
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    tokens = login(user)
    new = refresh(api_client, tokens["refresh_token"]).json()
    time_machine.shift(timedelta(seconds=29))

    replay = refresh(api_client, tokens["refresh_token"])

    assert replay.status_code == 401
    assert Session.objects.get().revoked_at is None
    assert refresh(api_client, new["refresh_token"]).status_code == 200


def test_grace_window_past_expiry_revokes(api_client, user, login, settings, time_machine):
    settings.REFRESH_REUSE_GRACE_SECONDS = 30
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    tokens = login(user)
    refresh(api_client, tokens["refresh_token"])
    time_machine.shift(timedelta(seconds=31))
    assert refresh(api_client, tokens["refresh_token"]).status_code == 401
    assert Session.objects.get().revoked_reason == "reuse_detected"


def test_grace_window_covers_only_the_immediate_predecessor(api_client, tokens, settings):
    settings.REFRESH_REUSE_GRACE_SECONDS = 30
    second = refresh(api_client, tokens["refresh_token"]).json()
    refresh(api_client, second["refresh_token"])
    assert refresh(api_client, tokens["refresh_token"]).status_code == 401
    assert Session.objects.get().revoked_reason == "reuse_detected"


def test_strict_default_revokes_on_immediate_predecessor(api_client, tokens):
    refresh(api_client, tokens["refresh_token"])
    refresh(api_client, tokens["refresh_token"])
    assert Session.objects.get().revoked_reason == "reuse_detected"


# --- lifetimes ---------------------------------------------------------------------------


def test_refresh_idle_timeout_401(api_client, user, login, time_machine):
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    tokens = login(user)
    time_machine.shift(timedelta(days=7))
    assert refresh(api_client, tokens["refresh_token"]).json()["error"] == "Invalid refresh token"


def test_rotation_renews_idle_timeout(api_client, user, login, time_machine):
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    token = login(user)["refresh_token"]
    for _ in range(3):  # 18 days of use, each refresh within 7 days of the last
        time_machine.shift(timedelta(days=6))
        response = refresh(api_client, token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]


def test_absolute_session_lifetime_caps_rotation(api_client, user, login, time_machine):
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    token = login(user)["refresh_token"]
    for _ in range(4):  # 24 days
        time_machine.shift(timedelta(days=6))
        token = refresh(api_client, token).json()["refresh_token"]
    session = Session.objects.get()
    assert claims(token)["exp"] == int(session.expires_at.timestamp())  # capped, not +7 days
    time_machine.shift(timedelta(days=6))  # day 30: the session is over
    assert refresh(api_client, token).status_code == 401


def test_lifetimes_are_settings(api_client, user, login, settings, time_machine):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5)}
    settings.SESSION_ABSOLUTE_LIFETIME = timedelta(hours=1)
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    tokens = login(user)
    access = claims(tokens["access_token"])
    assert access["exp"] - access["iat"] == 300
    assert claims(tokens["refresh_token"])["exp"] - access["iat"] == 3600


def test_access_token_of_expired_session_refused(api_client, user, login, settings, time_machine):
    settings.SESSION_ABSOLUTE_LIFETIME = timedelta(minutes=10)
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    tokens = login(user)
    time_machine.shift(timedelta(minutes=11))  # access token itself lives 15 minutes
    response = api_client.get("/todos", **bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


# --- no usable token at rest ---------------------------------------------------------------


def _all_text_in_database() -> str:
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            dump.extend(str(row) for row in cursor.fetchall())
    return "\n".join(dump)


def test_database_never_holds_an_issued_token(api_client, user, login, password):
    issued = []
    for _ in range(2):
        tokens = login(user)
        issued += [tokens["access_token"], tokens["refresh_token"]]
        pair = refresh(api_client, tokens["refresh_token"]).json()
        issued += [pair["access_token"], pair["refresh_token"]]
    api_client.post(
        "/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        format="json",
        **bearer(pair["access_token"]),
    )
    dump = _all_text_in_database()
    for token in issued:
        assert token not in dump
        assert token.split(".")[2] not in dump  # not even the signature
    assert password not in dump
    stored = set(OutstandingToken.objects.values_list("token", flat=True))
    assert fingerprint(issued[1]) in stored


# --- query budget ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_refresh_costs_at_most_five_queries_in_one_transaction(api_client, make_user, login):
    tokens = login(make_user("quinn"))
    with QueryCounter(connection) as counted:
        response = refresh(api_client, tokens["refresh_token"])
    assert response.status_code == 200
    assert counted.queries <= 5, counted.summary()
    assert counted.autocommit == 0, counted.summary()
    assert (counted.commits, counted.rollbacks) == (1, 0)


def test_rotation_compare_and_swap_refuses_a_stale_read(api_client, tokens):
    """Even without a row lock (SQLite), a rotation based on a stale read cannot win."""
    from django.db import transaction
    from django.utils import timezone

    from accounts import services

    stale = Session.objects.get()
    winner = refresh(api_client, tokens["refresh_token"]).json()
    outstanding = OutstandingToken.objects.count()

    with transaction.atomic():
        assert services._rotate(stale, timezone.now()) is None

    assert Session.objects.get().current_jti == claims(winner["refresh_token"])["jti"]
    assert OutstandingToken.objects.count() == outstanding  # the loser's token was rolled back
