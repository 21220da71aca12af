"""The brute-force policy at every door: API login, admin login, both password changes."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connections
from django.test import Client as BrowserClient
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import guard
from accounts.clients import Client
from accounts.models import SecurityEvent, Session
from tests.conftest import PASSWORD, bearer

NEW_PASSWORD = "a-brand-new-Passphrase-42"
# "victim" in fullwidth letters: NFKC turns it into plain ASCII.
FULLWIDTH = "\uff56\uff49\uff43\uff54\uff49\uff4d"
PADDED = [" victim", "victim ", "\u2028victim", "\tvictim\n", FULLWIDTH, "VICTIM"]


@pytest.fixture
def rates(settings):
    """Small limits so the tests stay short; the real ones come from the environment."""
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {
            "login": "8/minute",
            "login_failure": "3/minute",
            "username_failure": "7/minute",
            "signup": "2/hour",
        },
    }


@pytest.fixture
def victim(make_user):
    return make_user("victim")


def attempt(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/auth/login", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )


def fail_until_locked(client, username="victim", times=3, ip="10.0.0.1"):
    for _ in range(times):
        assert attempt(client, username, "wrong", ip).status_code == 401


def assert_throttled(response):
    assert response.status_code == 429, response.content
    assert set(response.json()) == {"error", "code"}
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


# --- the API login ---------------------------------------------------------------------------


def test_right_password_refused_once_failures_reach_the_limit(api_client, victim, rates, store):
    fail_until_locked(api_client)
    assert_throttled(attempt(api_client, "victim", PASSWORD))


@pytest.mark.parametrize("spelling", PADDED)
def test_every_spelling_of_a_locked_username_is_locked_too(api_client, victim, rates, spelling):
    fail_until_locked(api_client)
    assert_throttled(attempt(api_client, spelling, "wrong"))
    assert_throttled(attempt(api_client, spelling, PASSWORD))


@pytest.mark.parametrize("spelling", PADDED)
def test_failures_under_any_spelling_count_against_one_identity(
    api_client, victim, rates, spelling
):
    fail_until_locked(api_client, username=spelling)
    assert_throttled(attempt(api_client, "victim", PASSWORD))


def test_padded_and_compatibility_spellings_sign_in_to_the_same_account(api_client, victim):
    for spelling in (" victim", "\tvictim\n", FULLWIDTH):
        assert attempt(api_client, spelling, PASSWORD).status_code == 200
    assert set(Session.objects.values_list("user", flat=True)) == {victim.pk}


def test_failures_from_one_address_leave_another_address_alone(api_client, victim, rates):
    fail_until_locked(api_client, ip="10.0.0.1")
    assert attempt(api_client, "victim", PASSWORD, ip="10.0.0.2").status_code == 200


def test_failures_for_one_username_from_many_addresses_lock_it_everywhere(
    api_client, victim, rates
):
    """Guessing spread over addresses: 7 wrong passwords from 7 addresses lock the name."""
    for n in range(7):
        assert attempt(api_client, "victim", "wrong", ip=f"10.0.1.{n}").status_code == 401
    assert_throttled(attempt(api_client, " VICTIM", PASSWORD, ip="10.0.2.1"))
    locked = SecurityEvent.objects.get(kind="locked_out")
    assert (locked.reason, locked.user) == ("too_many_failures_for_username", victim)


def test_an_ipv6_client_counts_as_its_slash_64(api_client, victim, rates):
    for host in range(3):  # three addresses of one /64
        attempt(api_client, "victim", "wrong", ip=f"2001:db8:1:2::{host + 1}")
    assert_throttled(attempt(api_client, "victim", PASSWORD, ip="2001:db8:1:2::99"))
    assert attempt(api_client, "victim", PASSWORD, ip="2001:db8:1:3::1").status_code == 200


MAPPED = "::ffff:198.51.100.7"


def through(route, ip):
    """Request arguments that make `ip` the client's address, as the socket or a proxy says."""
    if route == "proxy":  # NUM_PROXIES=1 (the `behind_a_proxy` fixture): the proxy's entry
        return {"REMOTE_ADDR": "10.9.9.9", "HTTP_X_FORWARDED_FOR": f"203.0.113.66, {ip}"}
    return {"REMOTE_ADDR": ip}


@pytest.fixture(params=["socket", "proxy"])
def route(request, settings):
    """The client's address from REMOTE_ADDR, or from X-Forwarded-For behind one proxy."""
    if request.param == "proxy":
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    return request.param


def login_from(client, route, ip, password):
    body = {"username": "victim", "password": password}
    return client.post("/auth/login", body, format="json", **through(route, ip))


def test_failures_from_a_mapped_address_leave_other_ipv4_clients_alone(
    api_client, victim, settings, route
):
    """The review's finding 1: a mapped address once counted as ::/64, every IPv4 client's."""
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login_failure": "5/minute"},
    }
    for _ in range(5):
        assert login_from(api_client, route, MAPPED, "wrong").status_code == 401
    assert_throttled(login_from(api_client, route, MAPPED, PASSWORD))
    assert login_from(api_client, route, "198.51.100.8", PASSWORD).status_code == 200
    assert login_from(api_client, route, "::ffff:198.51.100.8", PASSWORD).status_code == 200


def test_a_mapped_address_and_its_ipv4_spelling_share_one_count(
    api_client, victim, settings, route
):
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login_failure": "5/minute"},
    }
    for ip in (MAPPED, "198.51.100.7", MAPPED, "198.51.100.7", "::FFFF:C633:6407"):
        assert login_from(api_client, route, ip, "wrong").status_code == 401
    assert_throttled(login_from(api_client, route, "198.51.100.7", PASSWORD))
    assert_throttled(login_from(api_client, route, MAPPED, PASSWORD))


def test_events_and_sessions_record_a_mapped_address_as_ipv4(api_client, victim, route):
    login_from(api_client, route, MAPPED, "wrong")
    assert login_from(api_client, route, MAPPED, PASSWORD).status_code == 200
    events = SecurityEvent.objects.filter(kind__in=("login_failed", "login"))
    assert sorted(events.values_list("kind", "ip_address")) == [
        ("login", "198.51.100.7"),
        ("login_failed", "198.51.100.7"),
    ]
    assert list(Session.objects.values_list("ip_address", flat=True)) == ["198.51.100.7"]


def test_failures_for_one_username_leave_another_alone(api_client, victim, other_user, rates):
    fail_until_locked(api_client)
    assert attempt(api_client, other_user.username, PASSWORD).status_code == 200


def test_a_right_password_does_not_count_as_a_failure(api_client, victim, rates, store):
    for _ in range(2):
        attempt(api_client, "victim", "wrong")
        assert attempt(api_client, "victim", PASSWORD).status_code == 200
    assert attempt(api_client, "victim", "wrong").status_code == 401


def test_attempts_per_address_are_limited_whatever_the_username(api_client, make_user, rates):
    for n in range(8):
        make_user(f"user{n}")
        assert attempt(api_client, f"user{n}", PASSWORD).status_code == 200
    assert_throttled(attempt(api_client, "user0", PASSWORD))
    assert attempt(api_client, "user0", PASSWORD, ip="10.0.0.9").status_code == 200


def test_lock_ends_with_its_window(api_client, victim, rates, time_machine):
    time_machine.move_to("2026-02-01 08:00:00", tick=False)
    fail_until_locked(api_client)
    assert_throttled(attempt(api_client, "victim", PASSWORD))
    time_machine.shift(60)
    assert attempt(api_client, "victim", PASSWORD).status_code == 200


def test_unknown_user_still_costs_a_hash(api_client, victim, monkeypatch):
    """Unknown usernames run the hasher too, so response time doesn't reveal them."""
    hashes = []
    real_encode = MD5PasswordHasher.encode  # verify() hashes through encode() too
    monkeypatch.setattr(
        MD5PasswordHasher, "encode", lambda self, *a: hashes.append(1) or real_encode(self, *a)
    )
    attempt(api_client, "no-such-user", "whatever")
    unknown = len(hashes)
    hashes.clear()
    attempt(api_client, "victim", "wrong")
    assert unknown == len(hashes) == 1


def test_parallel_guesses_never_check_more_passwords_than_the_limit(
    transactional_db, rates, settings, store
):
    """Each check takes its place in the count before the password is hashed."""
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login": "100/minute"},
    }
    checked = []
    barrier = threading.Barrier(20)

    def guess(_):
        barrier.wait(timeout=10)
        try:
            return guard.password_check(
                door=guard.API_LOGIN,
                username="victim",
                client=Client("10.0.0.1"),
                verify=lambda: checked.append(1),  # the hasher, and a wrong password: None
            )
        except Exception as error:
            return type(error).__name__
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(guess, range(20)))
    assert len(checked) == 3
    assert results.count("Throttled") == 17
    assert SecurityEvent.objects.filter(kind="locked_out").count() == 1


def test_failures_either_side_of_a_minute_edge_add_up(api_client, victim, settings, store):
    """The review's finding 14: fixed windows let 3 failures at :57 and 2 at :01 go unlocked."""
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "THROTTLE_RATES": {**settings.ACCOUNTS["THROTTLE_RATES"], "login_failure": "5/minute"},
    }
    with time_machine.travel("2026-02-01 08:00:57", tick=False) as clock:
        fail_until_locked(api_client, times=3)
        clock.move_to("2026-02-01 08:01:01")
        fail_until_locked(api_client, times=2)
        refused = attempt(api_client, "victim", PASSWORD)
        assert_throttled(refused)
        assert refused["Retry-After"] == "56"  # the failures of 08:00:57 count until 08:01:57
        clock.move_to("2026-02-01 08:01:57")
        assert attempt(api_client, "victim", PASSWORD).status_code == 200


def test_retry_after_is_the_time_until_a_place_frees(api_client, victim, rates, store):
    with time_machine.travel("2026-02-01 08:00:00", tick=False) as clock:
        for _ in range(3):  # at 0, 10 and 20 s
            assert attempt(api_client, "victim", "wrong").status_code == 401
            clock.shift(10)
        clock.shift(-5)
        assert attempt(api_client, "victim", PASSWORD)["Retry-After"] == "35"
        clock.shift(34.5)
        assert attempt(api_client, "victim", PASSWORD)["Retry-After"] == "1"  # 0.5 s, rounded up
        clock.shift(0.5)
        assert attempt(api_client, "victim", "wrong").status_code == 401  # the place of 0 s
        assert attempt(api_client, "victim", PASSWORD)["Retry-After"] == "10"


def test_a_lockout_is_recorded_once_however_often_the_door_is_knocked(
    api_client, victim, rates, store
):
    with time_machine.travel("2026-02-01 08:00:00", tick=False) as clock:
        fail_until_locked(api_client)
        for _ in range(5):  # 3 failures + 5 refusals = 8 attempts: the address's limit too
            assert_throttled(attempt(api_client, "victim", PASSWORD))
        for _ in range(5):
            assert_throttled(attempt(api_client, "someone-else", PASSWORD))
        locks = SecurityEvent.objects.filter(kind="locked_out").order_by("id")
        assert [(e.reason, e.details["seconds"]) for e in locks] == [
            ("too_many_failures", 60),
            ("too_many_attempts", 60),
        ]
        clock.shift(60)  # every place free: the next lockout is news again
        fail_until_locked(api_client)
        assert SecurityEvent.objects.filter(kind="locked_out").count() == 3


def test_a_check_the_database_could_not_answer_counts_for_nothing(rates, store):
    """During an outage logins get 503, not a lockout that outlasts the outage."""
    from django.db import OperationalError

    def database_away():
        raise OperationalError("connection refused")

    for _ in range(10):  # past both limits (8 attempts, 3 failures a minute)
        with pytest.raises(OperationalError):
            guard.password_check(
                door=guard.API_LOGIN,
                username="victim",
                client=Client("10.0.0.1"),
                verify=database_away,
            )
    verified = guard.password_check(
        door=guard.API_LOGIN, username="victim", client=Client("10.0.0.1"), verify=lambda: "user"
    )
    assert verified == "user"


# --- the admin login -------------------------------------------------------------------------


def admin_login(client, username, password, ip="10.0.0.1"):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def test_admin_login_locks_like_the_api_and_says_so_without_judging_the_password(make_user, rates):
    make_user("root", is_staff=True, is_superuser=True)
    browser = BrowserClient()
    for _ in range(3):
        response = admin_login(browser, "root", "wrong")
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()

    refused_wrong = admin_login(browser, "root", "wrong-again")
    refused_right = admin_login(browser, "root", PASSWORD)

    for response in (refused_wrong, refused_right):
        page = response.content.decode()
        assert response.status_code == 200
        assert "Too many failed attempts. Try again in" in page
        assert "Please enter the correct username and password" not in page
    errors = [r.context["form"].non_field_errors() for r in (refused_wrong, refused_right)]
    assert errors[0] == errors[1]
    assert "_auth_user_id" not in browser.session
    # The API door shares the count: the admin's failures locked it too.
    assert_throttled(attempt(APIClient(), " ROOT", PASSWORD))


def test_admin_login_with_the_right_password_works_below_the_limit_and_is_recorded(
    make_user, rates
):
    root = make_user("root", is_staff=True, is_superuser=True)
    browser = BrowserClient()
    admin_login(browser, "root", "wrong")
    response = admin_login(browser, "root", PASSWORD)
    assert response.status_code == 302
    assert browser.session["_auth_user_id"]
    signed_in = SecurityEvent.objects.get(kind="login")
    assert (signed_in.user, signed_in.details) == (root, {"door": guard.ADMIN_LOGIN})


def test_admin_password_change_old_password_is_limited(make_user, rates):
    staff = make_user("root", is_staff=True, is_superuser=True)
    browser = BrowserClient()
    browser.force_login(staff)
    url = reverse("admin:password_change")

    def change(old):
        return browser.post(
            url,
            {"old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
            REMOTE_ADDR="10.0.0.1",
        )

    for _ in range(3):
        assert "Your old password was entered incorrectly" in change("wrong").content.decode()
    refused = change(PASSWORD)
    assert "Too many failed attempts" in refused.content.decode()
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)


# --- the API password change -----------------------------------------------------------------


def test_password_change_old_password_is_limited(api_client, user, login, rates):
    other_session = login(user)
    thief = login(user)
    body = {"old_password": "wrong", "new_password": NEW_PASSWORD}
    for _ in range(3):
        response = api_client.post(
            "/auth/password", body, format="json", **bearer(thief["access_token"])
        )
        assert response.json()["code"] == "wrong_password"

    body["old_password"] = PASSWORD
    refused = api_client.post(
        "/auth/password", body, format="json", **bearer(thief["access_token"])
    )

    assert_throttled(refused)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert api_client.get("/todos", **bearer(other_session["access_token"])).status_code == 200


def test_password_change_below_the_limit_works(api_client, user, tokens, rates):
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = api_client.post(
        "/auth/password", body, format="json", **bearer(tokens["access_token"])
    )
    assert response.status_code == 200


# --- signup ----------------------------------------------------------------------------------


def signup(client, username, ip="10.0.0.1"):
    body = {"username": username, "password": NEW_PASSWORD}
    return client.post("/auth/signup", body, format="json", REMOTE_ADDR=ip)


def test_signups_per_address_are_limited(api_client, rates, db):
    assert signup(api_client, "first").status_code == 201
    assert signup(api_client, "first").status_code == 400  # a probe for a taken name counts
    refused = signup(api_client, "third")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    assert signup(api_client, "third", ip="10.0.0.2").status_code == 201


# --- the record ------------------------------------------------------------------------------


def test_each_door_records_its_failures_and_the_lockout_logs_at_warning(
    api_client,
    make_user,
    user,
    other_user,
    tokens,
    login,
    rates,
    caplog,
    django_capture_on_commit_callbacks,
):
    staff = make_user("root", is_staff=True, is_superuser=True)
    admin = BrowserClient()
    with django_capture_on_commit_callbacks(execute=True):
        admin_login(admin, "root", "wrong")
        attempt(api_client, " alice", "wrong")
        body = {"old_password": "wrong", "new_password": NEW_PASSWORD}
        api_client.post("/auth/password", body, format="json", **bearer(tokens["access_token"]))
        admin.force_login(staff)
        admin.post(reverse("admin:password_change"), {"old_password": "wrong"})
        for _ in range(2):
            attempt(api_client, "alice", "wrong")
        attempt(api_client, "nobody-by-this-name", "wrong")
        login(other_user)

    failed = SecurityEvent.objects.filter(kind="login_failed").order_by("id")
    assert [(e.details["door"], e.username, e.user) for e in failed] == [
        (guard.ADMIN_LOGIN, "root", staff),
        (guard.API_LOGIN, "alice", user),  # the name as looked up, linked to the account
        (guard.API_PASSWORD_CHANGE, "alice", user),
        (guard.ADMIN_PASSWORD_CHANGE, "root", staff),
        (guard.API_LOGIN, "alice", user),
        (guard.API_LOGIN, "alice", user),
        (guard.API_LOGIN, "nobody-by-this-name", None),
    ]
    assert all(e.ip_address for e in failed)
    locked = SecurityEvent.objects.get(kind="locked_out")
    assert (locked.user, locked.details["door"], locked.reason) == (
        user,
        guard.API_LOGIN,
        "too_many_failures",
    )
    levels = {(r.security["event"], r.levelname) for r in caplog.records if r.name == "security"}
    assert ("locked_out", "WARNING") in levels
    assert ("login", "INFO") in levels and ("login_failed", "INFO") in levels
