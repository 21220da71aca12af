"""A key rotation under load: two app servers on one database fail no request, and a token
signed before the rotation keeps verifying, on both servers and by the JWKS alone.

The rotation is the documented one (`signing_keys add`, wait JWKS_MAX_AGE, `activate`,
later `retire`), run from this process while client threads log in on one server,
refresh on the other and GET /todos on both. JWKS_MAX_AGE and KEY_RING_SECONDS are made
small so the whole rotation takes seconds; the load stops by itself.
"""

import contextlib
import io
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
import pytest
from django.core.management import call_command

from accounts.conf import app_settings
from accounts.models import KeyState, SigningKey
from tests.appservers import REQUEST_TIMEOUT, START_TIMEOUT, Server, pytest_database_url
from tests.reporting import report

# Small enough to rotate in seconds; the servers get them through the environment, this
# process (which runs `signing_keys`) through settings.ACCOUNTS.
JWKS_MAX_AGE = 2
KEY_RING_SECONDS = 1
CLIENTS = 3
# Seconds of load before the rotation and after each of its steps.
SETTLE = 2.0
# Hard bounds on the load, whatever happens to the test's own steps.
LOAD_LIMIT_SECONDS = 45
CALLS_PER_CLIENT = 3000
# A client logs in again after this many refreshes, and retries every third refresh.
REFRESHES_PER_SESSION = 5
RETRY_EVERY = 3
# How late a request may start after `activate` returns and still meet a process that
# signs with the old key: each rereads its ring KEY_RING_SECONDS after its last read.
SWITCH_SECONDS = KEY_RING_SECONDS + 0.2


def kids(*tokens: str) -> set[str]:
    """The `kid`s named in the tokens' JOSE headers."""
    return {jwt.get_unverified_header(token)["kid"] for token in tokens}


def claims_of(pair: dict) -> list[dict]:
    """Both tokens' claims, unverified."""
    return [jwt.decode(pair[name], options={"verify_signature": False}) for name in sorted(pair)]


def signing_keys(*args: str) -> None:
    """`manage.py signing_keys ...` in this process."""
    call_command("signing_keys", *args, stdout=io.StringIO())


@dataclass
class Call:
    """One request of the load: what, where, when (monotonic), its status, the kids issued.

    `same_pair` is for a retried refresh: whether it got the bytes the first one got.
    """

    kind: str
    server: str
    started: float
    finished: float
    status: int
    kids: frozenset = frozenset()
    problem: str = ""
    same_pair: bool | None = None


class LoadClient(threading.Thread):
    """Log in on one server, refresh on the other, GET /todos on both; until told to stop."""

    def __init__(self, number: int, servers: dict, credentials: dict, stop: threading.Event):
        super().__init__(daemon=True)
        names = sorted(servers)
        # Each client logs in on one server and refreshes on the other, alternately.
        self.login_on, self.refresh_on = names[number % 2], names[(number + 1) % 2]
        self.servers, self.credentials, self.stop = servers, credentials, stop
        self.calls: list[Call] = []

    def call(self, kind: str, name: str, method: str, path: str, body=None, token=None):
        """One request, recorded; its body when it answered 200, else None."""
        started = time.monotonic()
        try:
            status, _, payload = self.servers[name].call(method, path, body, token)
        except OSError as exc:
            status, payload = 0, repr(exc)
        issued = frozenset()
        if status == 200 and kind in ("login", "refresh", "retry"):
            issued = frozenset(kids(payload["access_token"], payload["refresh_token"]))
        problem = "" if status == 200 else str(payload)[:300]
        self.calls.append(Call(kind, name, started, time.monotonic(), status, issued, problem))
        return payload if status == 200 else None

    def run(self) -> None:
        deadline = time.monotonic() + LOAD_LIMIT_SECONDS
        pair, refreshes = None, 0
        while (
            not self.stop.is_set()
            and time.monotonic() < deadline
            and len(self.calls) < CALLS_PER_CLIENT
        ):
            if pair is None or refreshes == REFRESHES_PER_SESSION:
                pair = self.call("login", self.login_on, "POST", "/auth/login", self.credentials)
                refreshes = 0
                if pair is None:
                    continue
            presented = {"refresh_token": pair["refresh_token"]}
            pair = self.call("refresh", self.refresh_on, "POST", "/auth/refresh", presented)
            refreshes += 1
            if pair is not None and refreshes % RETRY_EVERY == 0:
                # A retry within the grace window, to the other server, as a client that
                # lost the first answer; it goes on with what the retry answered.
                again = self.call("retry", self.login_on, "POST", "/auth/refresh", presented)
                if again is not None:
                    self.calls[-1].same_pair = again == pair
                    if claims_of(again) != claims_of(pair):
                        self.calls[-1].problem = "a retried refresh got other claims"
                pair = again
            if pair is None:
                continue
            for name in sorted(self.servers):
                self.call("todos", name, "GET", "/todos", token=pair["access_token"])


@contextlib.contextmanager
def serving(tmp_path, environments: dict[str, dict], workers: int = 2):
    """gunicorn servers on the test database, one per name, each with its own variables."""
    common = {
        "JWT_ISSUER": app_settings.ISSUER,
        "JWKS_MAX_AGE": str(JWKS_MAX_AGE),
        # The load logs in far faster than any person; the throttles aren't under test.
        "THROTTLE_LOGIN_RATE": "1000000/minute",
    }
    started = {}
    try:
        for name, environment in environments.items():
            log = tmp_path / f"gunicorn-{name}.log"
            env = {**common, **environment}
            started[name] = Server(pytest_database_url(), log, workers=workers, **env)
        for server in started.values():
            server.wait_until_healthy(START_TIMEOUT)
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def key_ring_settings(postgres_only, transactional_db, settings):
    """This process rotates with the servers' JWKS_MAX_AGE and KEY_RING_SECONDS; a key in use."""
    if app_settings.SIGNING_ALGORITHM.startswith("HS"):
        pytest.skip("key rotation needs a public-key JWT_ALGORITHM")
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "JWKS_MAX_AGE": JWKS_MAX_AGE,
        "KEY_RING_SECONDS": KEY_RING_SECONDS,
    }
    return SigningKey.objects.add(algorithm=app_settings.SIGNING_ALGORITHM, active=True)


def verified_everywhere(servers: dict, token: str) -> dict:
    """GET /todos with `token` on every server, then PyJWT with one server's JWKS alone."""
    for name, server in servers.items():
        status, _, body = server.call("GET", "/todos", token=token)
        assert status == 200, (name, body)
    jwks = jwt.PyJWKClient(f"{servers['a'].url}/.well-known/jwks.json", cache_jwk_set=False)
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(
        token, key.key, algorithms=[app_settings.SIGNING_ALGORITHM], issuer=app_settings.ISSUER
    )


def published_kids(server: Server) -> set[str]:
    status, _, body = server.call("GET", "/.well-known/jwks.json")
    assert status == 200, body
    return {key["kid"] for key in body["keys"]}


def test_key_rotation_under_load_fails_no_request_and_old_tokens_verify(
    key_ring_settings, user, password, tmp_path, request
):
    old = key_ring_settings
    credentials = {"username": user.username, "password": password}
    ring = {"KEY_RING_SECONDS": str(KEY_RING_SECONDS)}
    with serving(tmp_path, {"a": ring, "b": ring}) as servers:
        stop = threading.Event()
        clients = [LoadClient(number, servers, credentials, stop) for number in range(CLIENTS)]
        began = time.monotonic()
        for client in clients:
            client.start()
        try:
            time.sleep(SETTLE)
            status, _, before = servers["a"].call("POST", "/auth/login", credentials)
            assert status == 200, before
            old_access = before["access_token"]
            assert kids(old_access) == {old.kid}

            signing_keys("add")
            new = SigningKey.objects.get(state=KeyState.STAGED)
            # Clients that fetched the JWKS just before `add` have fetched it again by now.
            time.sleep(JWKS_MAX_AGE + 0.5)
            for server in servers.values():
                assert new.kid in published_kids(server)
            activating = time.monotonic()
            # "--": a kid is base64url, and argparse takes one starting with "-" for an option.
            signing_keys("activate", "--", new.kid)
            activated = time.monotonic()
            time.sleep(SWITCH_SECONDS + SETTLE)
            claims = verified_everywhere(servers, old_access)

            signing_keys("retire", "--", old.kid)
            # Every process has reread its ring, the old key retired in it, under load.
            time.sleep(KEY_RING_SECONDS + SETTLE)
            assert verified_everywhere(servers, old_access) == claims
        finally:
            stop.set()
            for client in clients:
                client.join(REQUEST_TIMEOUT + 5)
        loaded = time.monotonic() - began
        assert old.kid in published_kids(servers["b"])

    assert not any(client.is_alive() for client in clients)
    calls = [call for client in clients for call in client.calls]
    failed = [call for call in calls if call.status != 200 or call.problem]
    assert not failed, "\n".join(
        f"{c.kind} on {c.server} at {c.started - activated:+.2f}s: {c.status} {c.problem}"
        for c in failed
    )
    # Tokens minted (not re-minted by a retry) carry the old kid until `activate`, and the
    # new one on both servers from KEY_RING_SECONDS after it.
    minted = [call for call in calls if call.kind in ("login", "refresh")]
    assert {kid for call in minted if call.finished < activating for kid in call.kids} == {old.kid}
    switched = [call for call in minted if call.started > activated + SWITCH_SECONDS]
    assert {call.server for call in switched} == set(servers)
    assert {kid for call in switched for kid in call.kids} == {new.kid}
    # A retry gets the very bytes of the first answer, while the servers switch too: a
    # server whose ring predates the key that signed the pair reads it again.
    retries = [call for call in calls if call.kind == "retry"]
    resigned = [call for call in retries if not call.same_pair]
    assert resigned == []
    # A retired key stays published until the last token it signed has expired.
    old.refresh_from_db()
    assert old.state == KeyState.RETIRED
    assert old.needed_until >= datetime.fromtimestamp(claims["exp"], UTC)

    lags = {
        name: max(
            (c.started - activated for c in minted if c.server == name and old.kid in c.kids),
            default=0.0,
        )
        for name in servers
    }
    kinds = ("login", "refresh", "retry", "todos")
    counts = ", ".join(f"{sum(c.kind == kind for c in calls)} {kind}" for kind in kinds)
    report(
        request,
        f"key rotation under load: {len(calls)} requests in {loaded:.1f}s on 2 servers "
        f"({counts}), 0 failed; last old-kid token started {lags['a']:+.2f}s (a) and "
        f"{lags['b']:+.2f}s (b) after activate (KEY_RING_SECONDS={KEY_RING_SECONDS}); "
        f"{len(switched)} tokens minted after the switch, all new-kid; {len(retries)} retries "
        "answered with the very same pair; the pre-rotation token verified on both servers "
        "and by the JWKS after activate and after retire",
    )


def test_a_retry_on_a_server_that_has_not_reread_its_ring_gets_the_same_bytes(
    key_ring_settings, user, password, tmp_path
):
    credentials = {"username": user.username, "password": password}
    signing_keys("add")
    new = SigningKey.objects.get(state=KeyState.STAGED)
    # Both read the ring at start, the new key staged in it; b keeps it for a minute.
    environments = {"a": {"KEY_RING_SECONDS": "1"}, "b": {"KEY_RING_SECONDS": "60"}}
    with serving(tmp_path, environments, workers=1) as servers:
        signing_keys("activate", "--now", "--", new.kid)
        time.sleep(1.2)  # a rereads its ring at its next request; b does not
        status, _, tokens = servers["a"].call("POST", "/auth/login", credentials)
        assert status == 200, tokens
        presented = {"refresh_token": tokens["refresh_token"]}
        status, _, first = servers["a"].call("POST", "/auth/refresh", presented)
        assert status == 200, first
        assert kids(first["access_token"]) == {new.kid}
        status, _, again = servers["b"].call("POST", "/auth/refresh", presented)

    assert status == 200, again
    assert claims_of(again) == claims_of(first)
    assert kids(again["access_token"]) == {new.kid}
    assert again == first
