"""Django's contracts: authenticate() sees the request, the signals Django's own login and
errors send, an enum for every kind and reason, and accounts/ standing on its own."""

import ast
from pathlib import Path

import pytest
from django.contrib.auth import user_logged_in, user_login_failed
from django.contrib.auth.backends import ModelBackend
from django.core.signals import got_request_exception

from accounts.events import Event, LoggedOnly, record
from accounts.models import EventKind, RevokeReason, SecurityEvent, Session
from todos.views import TodoViewSet

ACCOUNTS = Path(__file__).resolve().parent.parent / "accounts"


class RecordingBackend(ModelBackend):
    """Django's ModelBackend, remembering the request each authenticate() was given."""

    seen: list = []

    def authenticate(self, request, username=None, password=None, **kwargs):
        self.seen.append(request)
        return super().authenticate(request, username=username, password=password, **kwargs)


@pytest.fixture
def recording_backend(settings):
    settings.AUTHENTICATION_BACKENDS = [f"{__name__}.RecordingBackend"]
    RecordingBackend.seen.clear()
    return RecordingBackend.seen


def received(signal):
    """The keyword arguments of every send of `signal` while the test runs."""
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    signal.connect(receiver, weak=False, dispatch_uid=f"tests.contracts.{id(calls)}")
    return calls, lambda: signal.disconnect(dispatch_uid=f"tests.contracts.{id(calls)}")


def test_login_hands_the_request_to_authentication_backends(
    api_client, user, password, recording_backend
):
    body = {"username": user.username, "password": password}
    assert (
        api_client.post("/auth/login", body, format="json", REMOTE_ADDR="198.51.100.4").status_code
        == 200
    )
    [request] = recording_backend
    assert request is not None and request.META["REMOTE_ADDR"] == "198.51.100.4"


def test_login_sends_user_logged_in_with_its_session(api_client, user, password):
    calls, disconnect = received(user_logged_in)
    try:
        api_client.post(
            "/auth/login", {"username": user.username, "password": password}, format="json"
        )
    finally:
        disconnect()
    [sent] = calls
    assert sent["user"] == user and sent["session"] == Session.objects.get(kind="api")
    assert sent["request"] is not None
    user.refresh_from_db()
    assert user.last_login is not None  # Django's own receiver, update_last_login, ran


def test_a_wrong_password_sends_user_login_failed_without_the_password(api_client, user):
    calls, disconnect = received(user_login_failed)
    try:
        response = api_client.post(
            "/auth/login", {"username": user.username, "password": "wrong-one"}, format="json"
        )
    finally:
        disconnect()
    assert response.status_code == 401
    [sent] = calls
    assert sent["credentials"]["username"] == user.username
    assert "wrong-one" not in str(sent["credentials"])  # Django cleanses it
    assert sent["request"] is not None


def test_an_unhandled_error_is_signalled_before_the_json_500(auth_client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(TodoViewSet, "list", explode)
    calls, disconnect = received(got_request_exception)
    auth_client.raise_request_exception = False
    try:
        response = auth_client.get("/todos")
    finally:
        disconnect()
    assert response.status_code == 500 and response.json()["code"] == "server_error"
    assert len(calls) == 1 and calls[0]["request"].path == "/todos"


def test_an_unknown_event_kind_raises_and_writes_nothing(user):
    for kind in ("logn", "login"):  # a typo, and a plain string even when it names a kind
        with pytest.raises(ValueError, match="Not a security event kind"):
            record(kind, user=user)
        with pytest.raises(ValueError, match="Not a security event kind"):
            Event(kind)
    assert not SecurityEvent.objects.exists()
    record(EventKind.LOGIN, user=user)
    record(LoggedOnly.REFRESH, user=user)  # logged only: no row
    assert list(SecurityEvent.objects.values_list("kind", flat=True)) == ["login"]


def test_an_unknown_revoke_reason_raises_and_ends_nothing(tokens):
    with pytest.raises(ValueError):
        Session.objects.all().revoke("logged_out")
    assert Session.objects.get().revoked_at is None
    assert Session.objects.all().revoke(RevokeReason.LOGOUT) == 1
    assert Session.objects.all().revoke(RevokeReason.LOGOUT) == 0  # ending it twice is harmless


def test_accounts_imports_nothing_from_project_or_todos():
    """The app can be lifted out: no module of it names this project's other packages."""
    offenders = []
    for path in ACCOUNTS.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ACCOUNTS.parent)}: {name}"
                for name in names
                if name.split(".")[0] in ("project", "todos", "tests", "bench")
            ]
    assert offenders == []


def test_one_revoke_verb():
    """Ending sessions has one name: no session_revoke, sessions_revoke, session_revoke_all."""
    defined = {
        node.name
        for path in ACCOUNTS.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    assert not {name for name in defined if name.startswith(("session_revoke", "sessions_revoke"))}
    assert "revoke" in defined and "end_sessions" not in defined
