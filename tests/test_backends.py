"""Sign-in finds a username in any case, prefers the exact spelling, and refuses a guess."""

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher, make_password
from django.test import Client as BrowserClient
from django.urls import reverse

from accounts.backends import user_by_username
from accounts.lookalikes import fill
from accounts.models import SecurityEvent, Session, UsernameSkeleton
from tests.conftest import PASSWORD

User = get_user_model()


@pytest.fixture
def hashes(monkeypatch):
    """How many times the password hasher ran (verify() hashes through encode() too)."""
    ran = []
    real_encode = MD5PasswordHasher.encode
    monkeypatch.setattr(
        MD5PasswordHasher, "encode", lambda self, *a: ran.append(1) or real_encode(self, *a)
    )
    return ran


def login(client, username, password=PASSWORD):
    body = {"username": username, "password": password}
    return client.post("/auth/login", body, format="json")


def twins(*names: str) -> list:
    """Accounts that differ only by case, made (around the hooks) before they were refused."""
    users = User.objects.bulk_create(
        [User(username=name, password=make_password(PASSWORD)) for name in names]
    )
    fill(User.objects, UsernameSkeleton.objects)
    return users


@pytest.mark.parametrize("spelling", ["ALICE", "Alice", "aLiCe"])
def test_login_by_another_case_signs_in_to_the_account(api_client, user, spelling):
    assert login(api_client, spelling).status_code == 200
    assert Session.objects.get().user == user


def test_login_by_another_case_of_a_non_ascii_name_signs_in(api_client, make_user):
    """Case-folded in Python, so SQLite (whose LIKE folds ASCII only) agrees with PostgreSQL."""
    emile = make_user("\u00e9mile")
    assert login(api_client, "\u00c9MILE").status_code == 200
    assert Session.objects.get().user == emile


def test_login_by_a_lookalike_is_no_login(api_client, user):
    """Only case is forgiven: a Cyrillic a is another name, and a lookalike of none."""
    response = login(api_client, "\u0430lice")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")


def test_a_wrong_password_under_another_case_is_recorded_against_the_account(api_client, user):
    login(api_client, "ALICE", "wrong")
    failed = SecurityEvent.objects.get(kind="login_failed")
    assert (failed.user, failed.username) == (user, "ALICE")


def test_the_exact_spelling_wins_among_accounts_that_differ_only_by_case(api_client, db):
    lower, upper = twins("victim", "VICTIM")
    assert login(api_client, "VICTIM").status_code == 200
    assert login(api_client, "victim").status_code == 200
    assert list(Session.objects.order_by("created_at").values_list("user", flat=True)) == [
        upper.pk,
        lower.pk,
    ]


def test_another_case_of_accounts_that_differ_only_by_case_is_refused(db, hashes):
    twins("victim", "VICTIM")
    hashes.clear()
    assert user_by_username("Victim") is None
    assert authenticate(None, username="Victim", password=PASSWORD) is None
    assert len(hashes) == 1  # as for any unknown name: the time does not tell


def test_an_unknown_username_still_costs_one_hash(db, hashes):
    assert authenticate(None, username="nobody", password=PASSWORD) is None
    assert len(hashes) == 1


def test_authenticate_takes_the_request_first_and_the_username_field_by_name(rf, user):
    request = rf.post("/")
    assert authenticate(request, username="ALICE", password=PASSWORD) == user
    assert authenticate(request, **{User.USERNAME_FIELD: "alice", "password": PASSWORD}) == user
    assert authenticate(request, username="alice") is None
    assert authenticate(request, username="alice", password="wrong") is None


def test_an_inactive_user_is_refused_in_any_case(user):
    user.is_active = False
    user.save()
    assert authenticate(None, username="ALICE", password=PASSWORD) is None


def test_admin_login_by_another_case_signs_in(make_user):
    make_user("root", is_staff=True, is_superuser=True)
    browser = BrowserClient()
    response = browser.post(
        reverse("admin:login"), {"username": "ROOT", "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert browser.session["_auth_user_id"]


def test_looking_up_a_username_costs_one_query_when_spelled_exactly(
    user, django_assert_num_queries
):
    with django_assert_num_queries(1):
        assert user_by_username("alice") == user
    with django_assert_num_queries(2):
        assert user_by_username("Alice") == user
