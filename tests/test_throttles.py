"""Login throttling: failures per username and address, all logins per address."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher


@pytest.fixture
def rates(settings):
    """Small rates so the tests stay short; the real ones come from the environment."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login": "8/minute", "login_failure": "3/minute"},
    }


def attempt(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/auth/login", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )


def test_failed_logins_throttled_per_username_and_ip_429(api_client, user, password, rates):
    for _ in range(3):
        assert attempt(api_client, user.username, "wrong").status_code == 401
    blocked = attempt(api_client, user.username, password)  # even the right password waits
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "throttled"
    assert "error" in blocked.json()
    assert 0 < int(blocked["Retry-After"]) <= 60


def test_failure_throttle_is_per_username(api_client, user, other_user, password, rates):
    for _ in range(3):
        attempt(api_client, user.username, "wrong")
    assert attempt(api_client, other_user.username, password).status_code == 200


def test_failure_throttle_is_per_address(api_client, user, password, rates):
    for _ in range(3):
        attempt(api_client, user.username, "wrong", ip="10.0.0.1")
    assert attempt(api_client, user.username, password, ip="10.0.0.2").status_code == 200


def test_successful_logins_do_not_count_as_failures(api_client, user, password, rates):
    for _ in range(5):
        assert attempt(api_client, user.username, password).status_code == 200


def test_all_logins_throttled_per_address_429(api_client, user, password, rates):
    for _ in range(8):
        assert attempt(api_client, user.username, password).status_code == 200
    response = attempt(api_client, user.username, password)
    assert response.status_code == 429
    assert "Retry-After" in response
    assert attempt(api_client, user.username, password, ip="10.0.0.9").status_code == 200


def test_throttle_window_expires_with_clock(api_client, user, password, rates, time_machine):
    time_machine.move_to("2026-02-01 08:00:00", tick=False)
    for _ in range(3):
        attempt(api_client, user.username, "wrong")
    assert attempt(api_client, user.username, password).status_code == 429
    time_machine.shift(61)
    assert attempt(api_client, user.username, password).status_code == 200


def test_unknown_user_still_costs_a_hash(api_client, user, monkeypatch):
    """Unknown usernames run the hasher too, so response time doesn't reveal them."""
    hashes = []
    real_encode = MD5PasswordHasher.encode  # verify() hashes through encode() too
    monkeypatch.setattr(
        MD5PasswordHasher, "encode", lambda self, *a: hashes.append(1) or real_encode(self, *a)
    )
    attempt(api_client, "no-such-user", "whatever")
    unknown = len(hashes)
    hashes.clear()
    attempt(api_client, user.username, "wrong")
    assert unknown == len(hashes) == 1
