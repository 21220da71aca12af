"""Bearer access tokens at GET /whoami: checked by the JWKS alone, refused when wrong."""

import time

import pytest

from tests.resource_server.harness import assert_invalid_token


def test_valid_token_with_channel_whole_checked_locally_without_introspection(warm, api):
    log_start = len(warm.log_text())
    token = api.access_token(sid="11111111-1111-4111-8111-111111111111")

    status, _, body = warm.whoami(token)

    assert (status, body) == (200, {"sub": "42", "sid": "11111111-1111-4111-8111-111111111111"})
    assert api.introspections == []
    assert warm.health()["whole"] is True
    assert "whoami 200 locally" in warm.log_text()[log_start:]


def test_token_whose_session_ends_later_accepted(warm, api):
    assert warm.whoami(api.access_token(session_exp=int(time.time()) + 60))[0] == 200


def test_refresh_token_refused_without_introspection(cold, api):
    assert_invalid_token(cold.whoami(api.access_token(token_type="refresh")))
    assert api.introspections == []


def expired(api):
    now = int(time.time())
    return api.access_token(iat=now - 1000, exp=now - 100)


BAD_TOKENS = {
    "expired": expired,
    "tampered": lambda api: api.access_token(signer="X"),
    "unpublished key": lambda api: api.access_token(kid="X"),
    "other issuer": lambda api: api.access_token(iss="http://evil.example"),
    "an audience we were not told": lambda api: api.access_token(aud="other-service"),
    "no sid": lambda api: api.access_token(sid=None),
    "sid not a string": lambda api: api.access_token(sid=7),
    "its session over": lambda api: api.access_token(session_exp=int(time.time()) - 5),
    "a SET": lambda api: api.heartbeat(),
    "not a JWT": lambda api: "not-a-jwt",
}


@pytest.mark.parametrize("make", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_token_refused_401_without_introspection(cold, api, make):
    assert_invalid_token(cold.whoami(make(api)))
    assert api.introspections == []


def test_missing_bearer_refused_401_without_an_error_code(cold):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        status, response_headers, body = cold.call("GET", "/whoami", headers=headers)
        assert (status, body["code"]) == (401, "not_authenticated")
        assert response_headers["WWW-Authenticate"] == 'Bearer realm="resource-server"'


def test_key_rotation_new_kid_fetched_once_then_verified(cold, api):
    assert cold.whoami(api.access_token(kid="A"))[0] == 200  # the key set is cached
    fetches = api.jwks_fetches
    api.published = ["A", "B"]  # the API stages then signs with a second key

    assert cold.whoami(api.access_token(kid="B"))[0] == 200
    assert api.jwks_fetches == fetches + 1
    assert cold.whoami(api.access_token(kid="B"))[0] == 200
    assert api.jwks_fetches == fetches + 1  # known now: no fetch

    assert_invalid_token(cold.whoami(api.access_token(kid="X")))  # refetched, still unknown
    assert api.jwks_fetches == fetches + 2
