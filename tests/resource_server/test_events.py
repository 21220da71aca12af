"""Pushed SETs at POST /events: applied once and answered 202, or refused with 400."""

import threading
import time
import uuid

import pytest

from tests.resource_server.harness import (
    CREDENTIAL_CHANGE,
    REQUEST_TIMEOUT,
    SESSION_REVOKED,
    assert_invalid_token,
    sid_of,
)


def test_session_revoked_event_accepted_then_that_sids_tokens_refused(warm, api):
    ended, other = api.access_token(), api.access_token()
    assert warm.whoami(ended)[0] == 200
    sid = sid_of(ended)
    revoked_before = warm.health()["revoked_sids"]

    status, headers, body = warm.push(api.revoked(sid))

    assert (status, body, headers["Content-Length"]) == (202, None, "0")
    assert_invalid_token(warm.whoami(ended))
    assert_invalid_token(warm.whoami(api.access_token(sid=sid)))  # a newer token of it too
    assert warm.whoami(other)[0] == 200
    assert api.introspections == []
    assert warm.health()["revoked_sids"] == revoked_before + 1


def test_duplicate_jti_accepted_and_applied_once(warm, api):
    first, second = api.access_token(), api.access_token()
    jti = uuid.uuid4().hex
    event = api.revoked(sid_of(first), jti=jti)
    revoked_before, log_start = warm.health()["revoked_sids"], len(warm.log_text())

    assert warm.push(event)[0] == 202
    assert warm.push(event)[0] == 202  # a retry
    # Another event under the same jti is taken for a retry too: de-duplication is by jti.
    assert warm.push(api.revoked(sid_of(second), jti=jti))[0] == 202

    assert_invalid_token(warm.whoami(first))
    assert warm.whoami(second)[0] == 200
    assert warm.health()["revoked_sids"] == revoked_before + 1
    assert warm.log_text()[log_start:].count("a duplicate, already applied") == 2


def test_credential_change_and_unknown_event_types_accepted_and_logged(warm, api):
    change = {
        "credential_type": "password",
        "change_type": "update",
        "event_timestamp": int(time.time()),
        "initiating_entity": "user",
    }
    sub_id = {"format": "iss_sub", "iss": api.issuer, "sub": "42"}
    revoked_before, log_start = warm.health()["revoked_sids"], len(warm.log_text())

    assert warm.push(api.event(CREDENTIAL_CHANGE, change, sub_id=sub_id))[0] == 202
    assert warm.push(api.event("https://example.com/event/new", {}, sub_id=sub_id))[0] == 202

    log = warm.log_text()[log_start:]
    assert "event 202 credential-change" in log and "sub='42'" in log
    assert "'https://example.com/event/new' is not one this server acts on" in log
    assert warm.health()["revoked_sids"] == revoked_before
    assert warm.whoami(api.access_token())[0] == 200


def test_many_events_at_once_all_applied(warm, api):
    sids = [str(uuid.uuid4()) for _ in range(40)]
    before = warm.health()
    statuses: list[int] = []

    def push(chunk: list[str]) -> None:
        statuses.extend(warm.push(api.revoked(sid))[0] for sid in chunk)

    threads = [threading.Thread(target=push, args=(sids[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT)

    assert statuses == [202] * 40
    after = warm.health()
    assert after["revoked_sids"] == before["revoked_sids"] + 40
    assert after["seen_jtis"] == before["seen_jtis"] + 40
    assert_invalid_token(warm.whoami(api.access_token(sid=sids[17])))


def no_sid(api):
    return api.event(SESSION_REVOKED, {}, sub_id={"format": "complex"})


BAD_EVENTS = {
    "bad signature": ("invalid_key", lambda api: api.revoked("s", signer="X")),
    "wrong aud": ("invalid_audience", lambda api: api.revoked("s", aud="someone-else")),
    "wrong iss": ("invalid_issuer", lambda api: api.revoked("s", iss="http://evil.example")),
    "wrong typ": ("invalid_request", lambda api: api.revoked("s", typ="JWT")),
    "an access token": ("invalid_request", lambda api: api.access_token()),
    "no jti": ("invalid_request", lambda api: api.revoked("s", jti=None)),
    "two events": ("invalid_request", lambda api: api.revoked("s", events={"a": {}, "b": {}})),
    "no session id": ("invalid_request", no_sid),
    "not a JWS": ("invalid_request", lambda api: "hello"),
}


@pytest.mark.parametrize("case", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_bad_event_refused_400_with_its_rfc8935_error(cold, api, case):
    err, make = case

    status, _, body = cold.push(make(api))

    assert (status, body["err"]) == (400, err), body
    assert body["description"]
    state = cold.health()
    assert (state["revoked_sids"], state["seen_jtis"]) == (0, 0)


def test_event_signed_by_a_key_not_published_yet_is_asked_for_again_503(cold, api):
    """A key the API has just activated may not be in our JWKS yet (its refetch cooldown):
    refusing the event for good would lose what may be a revocation."""
    status, _, body = cold.push(api.revoked("s", kid="X"))
    assert (status, body["code"]) == (503, "unavailable")
    state = cold.health()
    assert (state["revoked_sids"], state["seen_jtis"]) == (0, 0)


def test_event_with_another_content_type_or_too_large_refused_400(cold, api):
    status, _, body = cold.push(api.revoked("s"), content_type="application/json")
    assert (status, body["err"]) == (400, "invalid_request")

    status, _, body = cold.push("x" * 70_000)
    assert (status, body["err"]) == (400, "invalid_request")
    assert cold.health()["seen_jtis"] == 0
