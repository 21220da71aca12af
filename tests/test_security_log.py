"""Security events as JSON lines, and no token or password in any log line at all."""

import io
import json
import logging

import pytest
from rest_framework.test import APIClient

from accounts import events
from accounts.clients import Client
from accounts.models import RevokeReason, Session
from accounts.security_log import JSONFormatter, RedactTokens
from tests.conftest import bearer

NEW_PASSWORD = "brand-New-pass-789"
EVENT_FIELDS = {"time", "level", "event", "user", "sid", "ip", "reason"}


@pytest.fixture
def configured_output():
    """Everything the configured handlers write (their formatters and filters included)."""
    buffer = io.StringIO()
    handlers = [
        handler
        for name in ("security", "django")
        for handler in logging.getLogger(name).handlers
        if type(handler) is logging.StreamHandler
    ]
    assert len(handlers) == 2
    streams = [handler.setStream(buffer) for handler in handlers]
    yield buffer
    for handler, stream in zip(handlers, streams, strict=True):
        handler.setStream(stream)


@pytest.fixture
def every_flow(
    user, other_user, password, configured_output, caplog, django_capture_on_commit_callbacks
):
    """Drive every flow through the API; return what was logged and every secret used."""
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        secrets = _every_flow(user, other_user, password)
    output = configured_output.getvalue()
    return {"text": output + caplog.text, "output": output, "secrets": secrets}


def _every_flow(user, other_user, password) -> list[str]:
    """Every flow, through the API; returns the secrets it used or received."""
    client = APIClient(REMOTE_ADDR="127.0.0.1")
    secrets = [password, NEW_PASSWORD, "wrong-" + password, "weak"]

    def post(path, body, access=None):
        headers = bearer(access) if access else {}
        response = client.post(path, body, format="json", **headers)
        for key in ("access_token", "refresh_token"):
            if isinstance(response.data, dict) and key in response.data:
                secrets.append(response.data[key])
        return response

    def login(username, secret=password):
        return post("/auth/login", {"username": username, "password": secret})

    assert post("/auth/signup", {"username": "carol", "password": "weak"}).status_code == 400
    assert post("/auth/signup", {"username": "carol", "password": password}).status_code == 201
    assert login(user.username, "wrong-" + password).status_code == 401
    first = login(user.username).data
    second = post("/auth/refresh", {"refresh_token": first["refresh_token"]}).data
    # A retry of the token just replaced: forgiven, the same pair again.
    assert post("/auth/refresh", {"refresh_token": first["refresh_token"]}).data == second
    rotated = post("/auth/refresh", {"refresh_token": second["refresh_token"]}).data
    # Replaying an older one: reuse detected, the whole session revoked.
    assert post("/auth/refresh", {"refresh_token": first["refresh_token"]}).status_code == 401
    assert client.get("/todos", **bearer(rotated["access_token"])).status_code == 401
    # Tokens where a careless log line could pick them up: URL, bad header, body.
    client.get(f"/todos?token={rotated['refresh_token']}", **bearer(rotated["refresh_token"]))
    client.get(f"/nope/{rotated['access_token']}")
    post("/auth/refresh", {"refresh_token": rotated["access_token"]})

    second = login(user.username).data
    post("/auth/logout", {"refresh_token": second["refresh_token"]}, second["access_token"])
    third, fourth = login(user.username).data, login(user.username).data
    post("/auth/logout-all", {"keep_current": True}, third["access_token"])
    fifth = login(user.username).data
    body = {"old_password": password, "new_password": NEW_PASSWORD}
    assert post("/auth/password", body, third["access_token"]).status_code == 200
    bob = login(other_user.username).data
    # The admin's revoke action ends sessions with this same verb, reason "admin".
    Session.objects.filter(user=other_user).revoke(RevokeReason.ADMIN, client=Client("10.0.0.9"))
    assert fourth and fifth and bob
    return secrets


def security_lines(output: str) -> list[dict]:
    """The JSON objects the security handler wrote, one per line."""
    events = []
    for line in output.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if "event" in record and "sid" in record:
                events.append(record)
    return events


def test_no_token_signature_or_password_reaches_any_log_line(every_flow):
    text = every_flow["text"]
    tokens = [secret for secret in every_flow["secrets"] if secret.count(".") == 2]
    assert len(tokens) >= 14
    assert "Unauthorized" in text  # django.request's warnings were captured too
    for secret in every_flow["secrets"]:
        assert secret not in text
    for token in tokens:
        assert token.rsplit(".", 1)[1] not in text


def test_every_flow_logs_one_json_event_with_user_sid_ip_reason(every_flow, user, other_user):
    events = security_lines(every_flow["output"])
    assert events and all(set(event) >= EVENT_FIELDS for event in events)
    seen = {(event["event"], event["reason"]) for event in events}
    assert seen >= {
        ("login", None),
        ("login_failed", "invalid_credentials"),
        ("refresh", None),
        ("refresh_replayed", None),
        ("reuse_detected", None),
        ("refresh_refused", "reuse"),
        ("session_revoked", "reuse_detected"),
        ("session_revoked", "logout"),
        ("session_revoked", "logout_all"),
        ("session_revoked", "password_change"),
        ("password_changed", None),
        ("session_revoked", "admin"),
    }
    for event in events:
        if event["event"] not in ("login_failed", "signup"):
            assert event["user"] in (user.pk, other_user.pk)
            assert len(event["sid"]) == 36 or event["event"] == "password_changed"
    admin = [e for e in events if e["reason"] == "admin"]
    assert [e["ip"] for e in admin] == ["10.0.0.9"]
    assert {e["ip"] for e in events} - {"10.0.0.9"} == {"127.0.0.1"}


def test_redact_filter_blanks_a_jwt_in_message_args_and_traceback():
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXBhcnQ"
    try:
        raise ValueError(f"bad token {token}")
    except ValueError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "got %s", (token,), None)
        record.exc_info = (type(exc), exc, exc.__traceback__)
    RedactTokens().filter(record)
    line = JSONFormatter().format(record)
    assert "c2lnbmF0dXJlLXBhcnQ" not in line
    assert "got [redacted-jwt]" in line and "bad token [redacted-jwt]" in line


def test_security_event_is_one_json_line(caplog, transactional_db):
    caplog.set_level(logging.INFO, logger="security")
    events.record(events.LoggedOnly.REFRESH, user=7, sid="a" * 36, client=Client("127.0.0.1"))
    (record,) = [r for r in caplog.records if r.name == "security"]
    line = JSONFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["event"] == "refresh" and payload["user"] == 7 and payload["reason"] is None
    assert payload["time"].endswith("+00:00")
