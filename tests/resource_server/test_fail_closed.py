"""Fail closed: introspect whenever the channel is not proven whole; 503 if that fails."""

import base64
import time
import uuid

import pytest

from tests.resource_server.harness import assert_invalid_token, sid_of, wait_for, wait_past


def test_token_issued_before_start_up_introspected(warm, api):
    earlier = int(warm.started_at) - 60
    token = api.access_token(iat=earlier, exp=earlier + 900)
    log_start = len(warm.log_text())

    api.answer = {"active": False}
    assert_invalid_token(warm.whoami(token))
    api.answer = {"active": True}
    assert warm.whoami(token)[0] == 200

    assert len(api.introspections) == 2
    assert "issued before what this process remembers" in warm.log_text()[log_start:]


def test_no_heartbeat_yet_token_introspected_and_its_answer_followed(cold, api):
    token = api.access_token()

    status, _, body = cold.whoami(token)

    assert status == 200 and body["sub"] == "42"
    [(authorization, form)] = api.introspections
    # The credentials come from the file; Basic form-encodes both halves (RFC 6749 §2.3.1).
    pair = base64.b64decode(authorization.removeprefix("Basic ")).decode()
    assert pair == "rs-test-client:rs-test-secret%2F%2B%3D"
    assert form == {"token": [token], "token_type_hint": ["access_token"]}

    api.answer = {"active": False}
    assert_invalid_token(cold.whoami(token))
    assert len(api.introspections) == 2
    assert cold.health()["whole"] is False


@pytest.mark.parametrize("answer", [500, 401, 429, "hangup", "garbage", {"sub": "42"}], ids=str)
def test_introspection_failing_while_required_refused_503(cold, api, answer):
    api.answer = answer

    status, headers, body = cold.whoami(api.access_token())

    assert (status, body["code"], headers["Retry-After"]) == (503, "unavailable", "5")
    assert len(api.introspections) == 1


def test_heartbeat_received_switches_to_local_checks(start, api):
    server = start()
    token_before = api.access_token()
    assert server.whoami(token_before)[0] == 200
    assert len(api.introspections) == 1  # not whole yet: introspected

    wait_past(server.started_at)
    assert server.push(api.heartbeat())[0] == 202
    assert server.whoami(api.access_token())[0] == 200

    assert len(api.introspections) == 1
    assert server.health()["whole"] is True


def test_silence_past_tolerance_falls_back_to_introspection(whole, api):
    server = whole(RS_TOLERANCE_SECONDS="1")
    token = api.access_token()
    assert server.whoami(token)[0] == 200
    assert api.introspections == []

    wait_for(lambda: server.health()["whole"] is False)
    api.answer = {"active": False}
    assert_invalid_token(server.whoami(token))
    assert len(api.introspections) == 1

    assert server.push(api.heartbeat())[0] == 202  # heard again: local checks again
    assert server.whoami(token)[0] == 200
    assert len(api.introspections) == 1


def test_late_heartbeat_proves_nothing_and_takes_nothing_back(start, api):
    server = start(RS_TOLERANCE_SECONDS="10")

    # Issued 30 s ago and delivered only now: events written since may still be queued.
    assert server.push(api.heartbeat(iat=int(time.time()) - 30))[0] == 202

    assert server.health()["whole"] is False
    assert server.whoami(api.access_token())[0] == 200
    assert len(api.introspections) == 1
    assert "by introspection (no heartbeat within the tolerance)" in server.log_text()

    # A fresh one proves it; a late one arriving after it takes nothing back.
    assert server.push(api.heartbeat())[0] == 202
    assert server.health()["whole"] is True
    assert server.push(api.heartbeat(iat=int(time.time()) - 30))[0] == 202
    assert server.health()["whole"] is True


def test_revocations_over_the_cap_forgotten_and_their_tokens_introspected(whole, api):
    server = whole(RS_MAX_REMEMBERED="2")
    tokens = [api.access_token() for _ in range(3)]
    for token in tokens:
        assert server.push(api.revoked(sid_of(token)))[0] == 202
    state = server.health()
    assert (state["revoked_sids"], state["seen_jtis"]) == (2, 2)

    # The oldest revocation is forgotten: its token is no longer refused locally, and not
    # accepted locally either, but introspected.
    api.answer = {"active": False}
    assert_invalid_token(server.whoami(tokens[0]))
    assert len(api.introspections) == 1
    for token in tokens[1:]:
        assert_invalid_token(server.whoami(token))
    assert len(api.introspections) == 1

    # Tokens issued after what was forgotten are checked locally again.
    wait_past(server.health()["introspects_tokens_issued_before"])
    assert server.whoami(api.access_token())[0] == 200
    assert len(api.introspections) == 1


def test_revoked_sids_expire_after_their_memory_and_their_tokens_introspected(whole, api):
    server = whole(RS_REVOKED_SID_SECONDS="1")
    token = api.access_token()
    assert server.push(api.revoked(sid_of(token)))[0] == 202

    wait_for(lambda: server.health()["revoked_sids"] == 0)
    api.answer = {"active": False}
    assert_invalid_token(server.whoami(token))
    assert len(api.introspections) == 1


def test_signed_event_refused_makes_earlier_tokens_introspected(whole, api):
    server = whole()
    token = api.access_token()
    # A forgery says nothing about what the API sent: local checks go on.
    assert server.push(api.revoked("s", signer="X"))[0] == 400
    assert server.whoami(token)[0] == 200
    assert api.introspections == []

    # Another receiver's event, replayed here, was never ours to lose: nothing changes.
    status, _, body = server.push(api.revoked("s", aud="someone-else"))
    assert (status, body["err"]) == (400, "invalid_audience")
    assert server.whoami(token)[0] == 200
    assert api.introspections == []

    # The API's own event to us, refused (here it carries two events), is lost for good:
    # it may have revoked the session of any token issued until now.
    status, _, body = server.push(api.revoked("s", events={"a": {}, "b": {}}))
    assert (status, body["err"]) == (400, "invalid_request")
    api.answer = {"active": False}
    assert_invalid_token(server.whoami(token))
    assert len(api.introspections) == 1


def test_jwks_unreachable_refuses_tokens_and_asks_for_the_event_again(start, api):
    server = start()
    api.jwks_down = True

    status, _, body = server.whoami(api.access_token())
    assert (status, body["code"]) == (503, "unavailable")
    # 503, not 400: a 400 would make the API drop what may be a revocation.
    status, _, body = server.push(api.revoked(str(uuid.uuid4())))
    assert (status, body["code"]) == (503, "unavailable")
    assert server.health()["revoked_sids"] == 0

    api.jwks_down = False
    assert server.whoami(api.access_token())[0] == 200


def test_metadata_naming_another_issuer_refused_503(start, api):
    api.metadata_issuer = "http://evil.example"
    server = start()

    assert server.whoami(api.access_token())[0] == 503
    assert "metadata names issuer 'http://evil.example'" in server.log_text()
    assert api.introspections == []
