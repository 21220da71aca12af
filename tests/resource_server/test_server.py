"""The process itself: routes in JSON, its log lines and its start-up configuration."""

import subprocess
import sys

from tests.resource_server.harness import CLIENT_SECRET, SERVER, server_env, sid_of


def test_unknown_path_and_wrong_method_answered_in_json(cold):
    assert cold.call("GET", "/nope")[0::2] == (404, {"error": "Not found.", "code": "not_found"})
    status, headers, body = cold.call("GET", "/events")
    assert (status, headers["Allow"], body["code"]) == (405, "POST", "method_not_allowed")
    status, _, body = cold.call("DELETE", "/whoami")
    assert (status, body["code"]) == (501, "not_implemented")


def test_log_has_a_line_per_decision_and_never_a_token(whole, api):
    server = whole()
    token, refresh = api.access_token(), api.access_token(token_type="refresh")
    revocation = api.revoked(sid_of(token))
    server.whoami(token)
    server.whoami(refresh)
    server.push(revocation)
    server.whoami(token)
    server.stop()

    log = server.log_text()
    for secret in (token, refresh, revocation, CLIENT_SECRET):
        assert secret not in log
        assert secret.split(".")[-1] not in log  # not even a signature
    assert [line.split(" INFO ")[1][:12] for line in log.splitlines() if " INFO " in line] == [
        "listening on",
        "issuer metad",
        "event 202 he",
        "whoami 200 l",
        "whoami 401: ",
        "event 202 se",
        "whoami 401: ",
        "stopped",
    ]


def test_missing_or_unreadable_credentials_refuse_to_start(api, tmp_path):
    env = server_env(api, RS_CLIENT_SECRET=None)
    result = subprocess.run([sys.executable, str(SERVER)], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "RS_CLIENT_ID and RS_CLIENT_SECRET, or RS_CREDENTIALS_FILE" in result.stderr

    broken = tmp_path / "credentials.json"
    broken.write_text('{"client_id": "rs", "client_secret": "hunter2-secret"')  # no closing brace
    env = {**server_env(api, RS_CLIENT_ID=None, RS_CLIENT_SECRET=None)}
    env["RS_CREDENTIALS_FILE"] = str(broken)
    result = subprocess.run([sys.executable, str(SERVER)], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "must be readable JSON" in result.stderr and "hunter2" not in result.stderr


def test_bad_numbers_refuse_to_start_naming_each(api):
    env = server_env(api, RS_TOLERANCE_SECONDS="soon", RS_MAX_REMEMBERED="inf", RS_LISTEN="8001")
    result = subprocess.run([sys.executable, str(SERVER)], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "RS_TOLERANCE_SECONDS must be a number >= 0.1 (got 'soon')" in result.stderr
    assert "RS_MAX_REMEMBERED must be a number >= 1 (got 'inf')" in result.stderr
    assert "RS_LISTEN must be HOST:PORT (got '8001')" in result.stderr
