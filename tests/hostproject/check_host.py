"""A project made with startproject, given the accounts app three ways: the app's whole story.

Run by tests/test_host_project.py from the source tree, and by .ci/run from a wheel built
from the checkout (so nothing here may import this repository's other packages).
"""

import time

import pytest

from accounts.models import RevokeReason, Session

pytestmark = pytest.mark.django_db

PASSWORD = "a-Strong-passphrase-42"
LOGGED_OUT = "You have been logged out. Please log in again."


def post(client, path: str, body: dict, access: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {access}"} if access else {}
    return client.post(path, body, content_type="application/json", **headers)


def me(client, access: str):
    return client.get("/me", HTTP_AUTHORIZATION=f"Bearer {access}")


@pytest.fixture
def tokens(client) -> dict:
    credentials = {"username": "ada", "password": PASSWORD}
    assert post(client, "/auth/signup", credentials).status_code == 201
    response = post(client, "/auth/login", credentials)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_lesson_flow(client, tokens):
    refreshed = post(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    pair = refreshed.json()
    assert pair["access_token"] != tokens["access_token"]
    assert me(client, pair["access_token"]).json() == {"username": "ada"}

    logout = post(
        client, "/auth/logout", {"refresh_token": pair["refresh_token"]}, pair["access_token"]
    )
    assert logout.status_code == 200

    refused = me(client, pair["access_token"])
    assert refused.status_code == 401
    assert refused.json()["detail"] == LOGGED_OUT  # the host's own error shape, the app's text
    again = post(client, "/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401


def test_the_grace_window_gives_a_retry_the_very_same_pair(client, tokens):
    first = post(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]}).json()
    retry = post(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert retry.status_code == 200 and retry.json() == first
    assert me(client, first["access_token"]).status_code == 200


def test_reuse_detection_ends_the_session(client, tokens, settings):
    settings.ACCOUNTS = {"REFRESH_REUSE_GRACE_SECONDS": 0}  # strict: any replay is reuse
    newer = post(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]}).json()
    replay = post(client, "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert Session.objects.get().revoked_reason == RevokeReason.REUSE_DETECTED
    assert me(client, newer["access_token"]).status_code == 401


def test_an_admin_revocation_ends_the_session_on_the_next_request(client, tokens, admin_client):
    session = Session.objects.get(user__username="ada")
    response = admin_client.post(
        "/admin/accounts/session/",
        {"action": "revoke_selected", "_selected_action": [session.pk]},
    )
    assert response.status_code == 302
    refused = me(client, tokens["access_token"])
    assert refused.status_code == 401 and refused.json()["detail"] == LOGGED_OUT
    assert Session.objects.get(pk=session.pk).revoked_reason == RevokeReason.ADMIN


def test_tokens_are_signed_with_a_published_key(client, tokens):
    """A development key is made at the first login; its kid is in the token's header."""
    import jwt

    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "RS256" and header["kid"]
    assert (
        time.time() < jwt.decode(tokens["access_token"], options={"verify_signature": False})["exp"]
    )
