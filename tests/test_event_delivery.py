"""Session events end to end, every part its own process, as deployed: the API (gunicorn),
the worker that pushes events (Celery with its beat, on Redis), and the reference resource
server (examples/resource_server). A logout at the API is a 401 at the resource server
within a second; a resource server that was down fails closed, then gets every event."""

import io
import json
import statistics
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from redis import Redis

from accounts.models import OutboxEvent, PushKind, PushState
from tests.appservers import START_TIMEOUT, EventWorker, Server, free_port, pytest_database_url
from tests.conftest import PASSWORD
from tests.reporting import report
from tests.resource_server.harness import ResourceServer as ReferenceServer
from tests.resource_server.harness import assert_invalid_token, wait_for, wait_past

pytestmark = pytest.mark.django_db(transaction=True)

# Short intervals, so the test waits seconds rather than minutes: a heartbeat each second
# (the resource server trusts its channel for 3), a dispatch each tenth, backoff up to 1 s.
TIMINGS = {
    "EVENTS_HEARTBEAT_SECONDS": "1",
    "EVENTS_DISPATCH_SECONDS": "0.1",
    "EVENTS_MAX_BACKOFF_SECONDS": "1",
}


class Stack:
    """The three processes, and what the test needs to drive them."""

    def __init__(self, tmp_path, broker: str) -> None:
        self.tmp_path = tmp_path
        database = pytest_database_url()
        port = free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        environment = {"JWT_ISSUER": self.issuer, **TIMINGS}
        self.database, self.broker, self.environment = database, broker, environment
        self.api = Server(database, tmp_path / "api.log", port=port, **environment)
        self.worker = self.start_worker("worker", wait=False)
        self.rs_port = free_port()
        out = io.StringIO()
        call_command(
            "add_resource_server",
            "reference",
            "--push-url",
            f"http://127.0.0.1:{self.rs_port}/events",
            stdout=out,
        )
        self.credentials = json.loads(out.getvalue())
        self.rs = None
        self.api.wait_until_healthy(START_TIMEOUT)
        self.worker.wait_until_ready()

    def start_worker(self, name: str, *, wait: bool = True) -> EventWorker:
        worker = EventWorker(
            self.database, self.tmp_path / f"{name}.log", REDIS_URL=self.broker, **self.environment
        )
        if wait:
            worker.wait_until_ready()
        return worker

    def start_rs(self, name: str = "rs") -> ReferenceServer:
        env = {
            "PATH": "/usr/bin:/bin",
            "RS_ISSUER": self.issuer,
            "RS_LISTEN": f"127.0.0.1:{self.rs_port}",
            "RS_CLIENT_ID": self.credentials["client_id"],
            "RS_CLIENT_SECRET": self.credentials["client_secret"],
            "RS_HEARTBEAT_SECONDS": TIMINGS["EVENTS_HEARTBEAT_SECONDS"],
            "RS_LEEWAY_SECONDS": "0",
        }
        self.rs = ReferenceServer(self.tmp_path / f"{name}.log", env)
        return self.rs

    def login(self) -> dict:
        status, _, body = self.api.call(
            "POST", "/auth/login", {"username": "carol", "password": PASSWORD}
        )
        assert status == 200, body
        return body

    def logout(self, pair: dict) -> None:
        status, _, body = self.api.call(
            "POST", "/auth/logout", {"refresh_token": pair["refresh_token"]}, pair["access_token"]
        )
        assert status == 200, body

    def wait_until_whole(self) -> None:
        """Until the resource server trusts its channel (a heartbeat since it started), and
        tokens minted now are newer than its start (`iat` counts whole seconds)."""
        wait_for(lambda: self.rs.health()["whole"], timeout=10)
        wait_past(self.rs.started_at)

    def stop(self) -> None:
        for process in (self.rs, self.worker, self.api):
            if process is not None:
                process.stop()


@pytest.fixture
def stack(tmp_path, redis_server):
    get_user_model().objects.create_user("carol", password=PASSWORD)
    broker = redis_server.rsplit("/", 1)[0] + "/3"  # a database of its own on the test Redis
    Redis.from_url(broker).flushdb()
    running = Stack(tmp_path, broker)
    try:
        yield running
    finally:
        running.stop()


def seconds_until_refused(rs: ReferenceServer, access: str, timeout: float = 5) -> float:
    """From now until the resource server refuses `access`, polling every 10 ms."""
    start = time.monotonic()
    while rs.whoami(access)[0] != 401:
        assert time.monotonic() - start < timeout, "still accepted"
        time.sleep(0.01)
    return time.monotonic() - start


def test_a_logout_at_the_api_is_a_401_at_the_resource_server_within_a_second(stack, request):
    rs = stack.start_rs()
    stack.wait_until_whole()
    delays = []
    for _ in range(10):
        pair = stack.login()
        status, _, body = rs.whoami(pair["access_token"])
        assert status == 200 and body["sid"], body
        stack.logout(pair)
        delays.append(seconds_until_refused(rs, pair["access_token"]))
        assert_invalid_token(rs.whoami(pair["access_token"]))
    log = rs.log_text()
    # Refused by what was pushed, not by asking: the channel was whole, every 200 was local.
    assert "whoami 200 locally" in log and "by introspection" not in log
    assert log.count("session-revoked") == 10
    report(
        request,
        f"logout -> resource server 401 over 10 logouts: median "
        f"{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms",
    )
    assert max(delays) < 1.0, delays


def test_a_resource_server_that_was_down_fails_closed_then_gets_every_event(stack):
    rs = stack.start_rs()
    stack.wait_until_whole()
    kept = stack.login()
    ended = [stack.login() for _ in range(5)]
    rs.stop()

    for pair in ended:
        stack.logout(pair)
    queue = OutboxEvent.objects.filter(receiver__name="reference")
    # The worker tries, fails, and backs off while nobody listens.
    wait_for(lambda: queue.filter(state=PushState.PENDING, attempts__gte=2).exists(), timeout=10)
    # The worker stops too, so nothing can arrive before the checks below.
    stack.worker.stop()

    rs = stack.start_rs("rs-again")
    # Back with an empty memory, it knows it may have missed events: every token issued
    # before it started is checked by introspection until a heartbeat proves the channel whole.
    for pair in ended:
        assert_invalid_token(rs.whoami(pair["access_token"]))
    assert rs.whoami(kept["access_token"])[0] == 200
    assert rs.log_text().count("introspection says not active") == 5
    assert "whoami 200 by introspection" in rs.log_text()
    assert not rs.health()["whole"]

    # The worker again: every missed event arrives, each once, with the jti it was first
    # sent with; then a heartbeat, and the channel is whole again.
    stack.worker = stack.start_worker("worker-again")
    wait_for(lambda: not queue.filter(state=PushState.PENDING).exists(), timeout=10)
    revocations = queue.filter(kind=PushKind.SESSION_REVOKED)
    assert revocations.count() == 5
    assert set(revocations.values_list("state", flat=True)) == {PushState.DELIVERED}
    log = rs.log_text()
    assert all(f"jti={jti!r} sid=" in log for jti in revocations.values_list("jti", flat=True))
    assert log.count("session-revoked") == 5  # none twice: duplicates only ever share a jti
    stack.wait_until_whole()
    # A token issued before it started stays introspected (its memory cannot vouch for it);
    # one issued since is trusted locally again.
    assert rs.whoami(kept["access_token"])[0] == 200
    assert rs.whoami(stack.login()["access_token"])[0] == 200
    assert rs.log_text().count("whoami 200 locally") == 1
