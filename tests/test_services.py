"""The session service: rotation, reuse detection, grace, lifetimes, and no token at rest."""

from datetime import timedelta

import jwt
import pytest
from django.db import connection
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import SecurityEvent, Session
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
    kinds = SecurityEvent.objects.values_list("kind", "reason")
    assert set(kinds) >= {("reuse_detected", ""), ("session_revoked", "reuse_detected")}


def test_reuse_in_one_session_leaves_other_sessions_alive(api_client, user, login):
    victim, other = login(user), login(user)
    refresh(api_client, victim["refresh_token"])
    refresh(api_client, victim["refresh_token"])
    assert api_client.get("/todos", **bearer(other["access_token"])).status_code == 200


# --- the grace window: the honest retry gets the very same pair ---------------------------


def live_refresh_tokens(session) -> set[str]:
    """Jtis of the session's refresh tokens that are not blacklisted."""
    return set(
        session.token_links.filter(token__blacklistedtoken__isnull=True).values_list(
            "token__jti", flat=True
        )
    )


def test_retry_within_the_window_gets_the_very_same_pair(api_client, tokens):
    new = refresh(api_client, tokens["refresh_token"]).json()  # the answer the client lost
    outstanding = OutstandingToken.objects.count()

    retry = refresh(api_client, tokens["refresh_token"])

    assert retry.status_code == 200
    assert retry.json() == new  # byte for byte: access and refresh
    session = Session.objects.get()
    assert session.revoked_at is None
    assert OutstandingToken.objects.count() == outstanding  # no new row, no sibling
    assert live_refresh_tokens(session) == {claims(new["refresh_token"])["jti"]}
    assert api_client.get("/todos", **bearer(new["access_token"])).status_code == 200


def test_the_session_rotates_on_after_a_forgiven_replay(api_client, tokens):
    new = refresh(api_client, tokens["refresh_token"]).json()
    refresh(api_client, tokens["refresh_token"])
    newer = refresh(api_client, new["refresh_token"])
    assert newer.status_code == 200
    assert newer.json()["refresh_token"] != new["refresh_token"]
    assert Session.objects.get().revoked_at is None


def test_parent_replay_at_the_end_of_the_window_ends_the_session(
    api_client, user, login, time_machine
):
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    tokens = login(user)
    new = refresh(api_client, tokens["refresh_token"]).json()
    time_machine.shift(timedelta(seconds=9.9))
    assert refresh(api_client, tokens["refresh_token"]).json() == new
    time_machine.shift(timedelta(seconds=0.1))  # 10 s: the default window has closed

    assert refresh(api_client, tokens["refresh_token"]).status_code == 401
    assert Session.objects.get().revoked_reason == "reuse_detected"
    assert refresh(api_client, new["refresh_token"]).status_code == 401


CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def from_(address: str, user_agent: str = CHROME) -> dict:
    return {"REMOTE_ADDR": address, "HTTP_USER_AGENT": user_agent}


def refresh_from(client, token, address, user_agent=CHROME):
    return client.post(
        "/auth/refresh", {"refresh_token": token}, format="json", **from_(address, user_agent)
    )


@pytest.mark.parametrize(
    ("owner", "retry"),
    [
        (("198.51.100.7", CHROME), ("198.51.100.7", CHROME)),
        (("198.51.100.7", CHROME), ("198.51.100.200", CHROME)),  # same /24: a NAT's next address
        (("2001:db8:1:2::7", CHROME), ("2001:db8:1:2:ffff::9", CHROME)),  # same /64
        (("198.51.100.7", CHROME), ("::ffff:198.51.100.8", CHROME)),  # the same network, mapped
    ],
    ids=["same address", "same IPv4 /24", "same IPv6 /64", "IPv4-mapped"],
)
def test_a_retry_from_the_client_the_rotation_served_is_forgiven(api_client, tokens, owner, retry):
    new = refresh_from(api_client, tokens["refresh_token"], *owner).json()
    again = refresh_from(api_client, tokens["refresh_token"], *retry)
    assert again.status_code == 200 and again.json() == new
    assert Session.objects.get().revoked_at is None


@pytest.mark.parametrize(
    "thief",
    [
        ("203.0.113.9", CHROME),  # another network, the same browser
        ("198.51.101.7", CHROME),  # the neighbouring /24
        ("198.51.100.7", FIREFOX),  # the same network, another browser
        ("2001:db8:1:3::7", CHROME),  # another /64
    ],
    ids=["other network", "neighbouring /24", "other device", "other /64"],
)
def test_a_replay_within_the_window_from_another_client_ends_the_session(api_client, tokens, thief):
    """The review's attack: the thief's replay 5 s later got the owner's very pair."""
    owner = ("2001:db8:1:2::7", CHROME) if ":" in thief[0] else ("198.51.100.7", CHROME)
    new = refresh_from(api_client, tokens["refresh_token"], *owner).json()

    stolen = refresh_from(api_client, tokens["refresh_token"], *thief)

    assert stolen.status_code == 401
    assert stolen.json()["code"] == "invalid_refresh_token"
    session = Session.objects.get()
    assert session.revoked_reason == "reuse_detected"
    assert SecurityEvent.objects.filter(kind="reuse_detected").count() == 1
    # The owner's pair dies with it, and so does the owner's retry: nobody holds the session.
    assert api_client.get("/todos", **bearer(new["access_token"])).status_code == 401
    assert refresh_from(api_client, tokens["refresh_token"], *owner).status_code == 401
    assert refresh_from(api_client, new["refresh_token"], *owner).status_code == 401


def test_the_rotation_records_the_network_and_device_it_served(api_client, tokens):
    refresh_from(api_client, tokens["refresh_token"], "198.51.100.7", FIREFOX)
    session = Session.objects.get()
    assert (session.refreshed_network, session.refreshed_device) == (
        "198.51.100.0/24",
        "Firefox on Ubuntu",
    )


def test_grandparent_replay_ends_the_session_within_the_window(api_client, tokens):
    """A parent whose successor has itself been rotated is no longer forgiven."""
    second = refresh(api_client, tokens["refresh_token"]).json()
    third = refresh(api_client, second["refresh_token"]).json()
    assert refresh(api_client, tokens["refresh_token"]).status_code == 401
    assert Session.objects.get().revoked_reason == "reuse_detected"
    assert api_client.get("/todos", **bearer(third["access_token"])).status_code == 401


def test_the_window_is_a_setting(api_client, user, login, settings, time_machine):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REFRESH_REUSE_GRACE_SECONDS": 60}
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    tokens = login(user)
    new = refresh(api_client, tokens["refresh_token"]).json()
    time_machine.shift(timedelta(seconds=59))
    assert refresh(api_client, tokens["refresh_token"]).json() == new


def test_strict_mode_treats_the_parent_as_reuse(api_client, tokens, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REFRESH_REUSE_GRACE_SECONDS": 0}
    new = refresh(api_client, tokens["refresh_token"]).json()
    assert refresh(api_client, tokens["refresh_token"]).status_code == 401
    assert Session.objects.get().revoked_reason == "reuse_detected"
    assert refresh(api_client, new["refresh_token"]).status_code == 401


def test_forgiven_replay_is_recorded_and_never_a_revocation(api_client, tokens):
    refresh(api_client, tokens["refresh_token"])
    refresh(api_client, tokens["refresh_token"])
    replayed = SecurityEvent.objects.get(kind="refresh_replayed")
    assert replayed.session_id == Session.objects.get().pk
    assert not SecurityEvent.objects.filter(kind__in=["session_revoked", "reuse_detected"])


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
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=1)}
    time_machine.move_to("2026-05-01 10:00:00", tick=False)
    tokens = login(user)
    access = claims(tokens["access_token"])
    assert access["exp"] - access["iat"] == 300
    assert claims(tokens["refresh_token"])["exp"] - access["iat"] == 3600


def test_access_token_of_expired_session_refused(api_client, user, login, settings, time_machine):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_ABSOLUTE_LIFETIME": timedelta(minutes=10)}
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


@pytest.mark.django_db(transaction=True)
def test_forgiven_replay_costs_a_locked_read_and_writes_only_its_event(
    api_client, make_user, login
):
    tokens = login(make_user("quinn"))
    refresh(api_client, tokens["refresh_token"])
    with QueryCounter(connection) as counted:
        response = refresh(api_client, tokens["refresh_token"])
    assert response.status_code == 200
    assert counted.queries <= 3, counted.summary()
    # No token, session or blacklist row: the one write is the security record's.
    writes = [s.sql for s in counted.statements if s.is_write]
    assert len(writes) == 1 and "accounts_securityevent" in writes[0], counted.summary()


def test_a_rotation_from_a_stale_read_cannot_win(api_client, tokens):
    """Without a row lock (SQLite), a rotation decided on a stale read still loses.

    Its successor's jti is the one the winner already recorded, so its insert fails
    on the unique index; and should that row be gone, the compare-and-swap refuses.
    """
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from accounts import refresh as refresh_module
    from accounts.clients import Client

    stale = Session.objects.get()
    winner = refresh(api_client, tokens["refresh_token"]).json()
    outstanding = OutstandingToken.objects.count()

    with pytest.raises(IntegrityError), transaction.atomic():
        refresh_module._rotate(stale, timezone.now(), Client())
    OutstandingToken.objects.filter(jti=claims(winner["refresh_token"])["jti"]).delete()
    with transaction.atomic():
        assert refresh_module._rotate(stale, timezone.now(), Client()) is None

    assert Session.objects.get().current_jti == claims(winner["refresh_token"])["jti"]
    assert OutstandingToken.objects.count() == outstanding - 1  # the loser's row rolled back
