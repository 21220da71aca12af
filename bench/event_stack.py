"""The processes of the session-event measures, as `make run` and `make resource-server`
start them: the API (gunicorn, from the bench's pool), the Celery worker with its beat on
the run's Redis, and reference resource servers (examples/resource_server); and the
receivers they register.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench.config import Run
from bench.databases import ROOT, database_url, django_env, manage
from bench.load import request
from bench.servers import Pool, Server, free_port, stop

# The short intervals of tests/test_event_delivery.py, so a run waits seconds, not minutes:
# a heartbeat each second (the resource server trusts its channel for 3), the outbox polled
# each tenth of a second, backoff at most 1 s. Production's defaults: 10 s and 0.25 s.
TIMINGS = {
    "EVENTS_HEARTBEAT_SECONDS": "1",
    "EVENTS_DISPATCH_SECONDS": "0.1",
    "EVENTS_MAX_BACKOFF_SECONDS": "1",
}
# The product's defaults (project/settings.py), which the receivers measure runs with:
# what it judges is what a deployment's logout costs beside its receivers.
PRODUCT_TIMINGS = {
    "EVENTS_HEARTBEAT_SECONDS": "10",
    "EVENTS_DISPATCH_SECONDS": "0.25",
    "EVENTS_MAX_BACKOFF_SECONDS": "600",
}
REFERENCE = ROOT / "examples" / "resource_server" / "server.py"
START_TIMEOUT = 30.0
POLL_SECONDS = 0.005


@contextmanager
def scratch(run: Run) -> Iterator[Path]:
    """A temporary directory for the processes' logs and beat's schedule; the logs go into
    the bench log when it is removed."""
    with tempfile.TemporaryDirectory(prefix="bench-events-") as directory:
        path = Path(directory)
        try:
            yield path
        finally:
            for log in sorted(path.glob("*.log")):
                run.log.write(f"--- {log.name} ---\n{log.read_text()}")
            run.log.flush()


@contextmanager
def spawned(argv: list[str], env: dict, log: Path) -> Iterator[subprocess.Popen]:
    """A process in a group of its own, writing to `log`; the group is stopped at the end
    (SIGTERM, SIGKILL after 10 s)."""
    with log.open("w") as output:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop(process)


def wait_until(ready: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    """Poll ready() until it holds; fail if `process` exits or START_TIMEOUT passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see the bench log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {START_TIMEOUT:.0f}s; see the bench log")
        time.sleep(0.05)


@contextmanager
def worker(
    run: Run, database: str, scratch: Path, issuer: str, timings: dict = TIMINGS
) -> Iterator[int]:
    """The Celery worker with its beat, with the argv of tests/appservers.EventWorker, on
    the run's Redis, with `timings`; yields its pid once it logs that it is ready."""
    if not run.env.get("REDIS_URL"):
        # Without it Celery would queue through folders in the checkout, which a
        # `make run` worker beside the bench could read.
        raise RuntimeError("the event worker needs the run's Redis (REDIS_URL in run.env)")
    log = scratch / "worker.log"
    argv = [
        *(sys.executable, "-m", "celery", "-A", "project", "worker", "--beat"),
        *("--schedule", str(scratch / "beat-schedule")),
        *("--pool", "threads", "--concurrency", "4", "--loglevel", "info"),
        *("--without-mingle", "--without-gossip", "--without-heartbeat"),
    ]
    # The worker signs the events: their `iss` must be the API's.
    env = {**django_env(run.env, database), **timings, "JWT_ISSUER": issuer}
    with spawned(argv, env, log) as process:
        wait_until(lambda: "ready." in log.read_text(), process, "the Celery worker")
        yield process.pid


@contextmanager
def reference(
    issuer: str, credentials: dict, port: int, log: Path, timings: dict = TIMINGS
) -> Iterator[int]:
    """The reference resource server on 127.0.0.1:`port`, expecting a heartbeat as often as
    `timings` sends one; yields its pid once it listens."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "RS_ISSUER": issuer,
        "RS_LISTEN": f"127.0.0.1:{port}",
        "RS_CLIENT_ID": credentials["client_id"],
        "RS_CLIENT_SECRET": credentials["client_secret"],
        "RS_HEARTBEAT_SECONDS": timings["EVENTS_HEARTBEAT_SECONDS"],
        # Same machine, same clock: a token issued after its start is trusted at once.
        "RS_LEEWAY_SECONDS": "0",
    }
    with spawned([sys.executable, str(REFERENCE)], env, log) as process:
        wait_until(lambda: "listening on" in log.read_text(), process, "the resource server")
        yield process.pid


def health(port: int) -> dict:
    """The resource server's /healthz: whether its channel is whole, when it started."""
    return request(port, "GET", "/healthz").body


def events_api(run: Run, pool: Pool) -> tuple[Server, str]:
    """The API server of these measures and its issuer: its own URL, where a resource
    server reads its metadata and keys (so the port is chosen before it starts)."""
    port = free_port()
    server = pool.get(run.volumes.main_db, "events", port=port, JWT_ISSUER=url(port))
    return server, url(server.port)


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def register(run: Run, name: str, push_url: str) -> dict:
    """`manage.py add_resource_server NAME --replace --push-url URL`, enabled; the client_id
    and client_secret it prints."""
    output = manage(
        run.env,
        run.volumes.main_db,
        *("add_resource_server", name, "--replace", "--push-url", push_url),
        log=run.log,
    )
    set_enabled(run.volumes.main_db, [name], True)
    return json.loads(output.strip().splitlines()[-1])


def set_enabled(database: str, names: list[str], enabled: bool) -> None:
    """Enable or disable receivers: a logout queues events for the enabled ones alone, and
    the worker sends to them alone (accounts.push.receivers)."""
    with psycopg.connect(database_url(database), autocommit=True) as conn:
        conn.execute(
            "UPDATE accounts_resourceserver SET enabled = %s WHERE name = ANY(%s)",
            [enabled, names],
        )


def remove(database: str, names: list[str]) -> None:
    """Delete these receivers and their queues, in one transaction."""
    with psycopg.connect(database_url(database)) as conn:
        ids = "SELECT id FROM accounts_resourceserver WHERE name = ANY(%s)"
        conn.execute(f"DELETE FROM accounts_outboxevent WHERE receiver_id IN ({ids})", [names])
        conn.execute("DELETE FROM accounts_resourceserver WHERE name = ANY(%s)", [names])


def logout(port: int, access: str, refresh: str) -> float:
    """`POST /auth/logout` with both tokens; its wall time. Anything but 200 stops the measure."""
    answer = request(port, "POST", "/auth/logout", body={"refresh_token": refresh}, token=access)
    if answer.status != 200:
        raise RuntimeError(f"logout answered {answer.status}: {answer.body}")
    return answer.seconds


def decisions(log: str) -> dict:
    """From the resource server's log: 401s for a session it heard was revoked, revocations
    pushed to it, and decisions that asked the API by introspection."""
    lines = log.splitlines()
    return {
        "refused_as_revoked": sum(
            bool(re.search(r"whoami 401: session .* was revoked", line)) for line in lines
        ),
        "pushed_revocations": sum("event 202 session-revoked" in line for line in lines),
        "introspections": sum("whoami" in line and "introspection" in line for line in lines),
    }


def wait_whole(port: int) -> None:
    """Until the resource server trusts its channel: a heartbeat heard since it started."""
    deadline = time.monotonic() + START_TIMEOUT
    while not health(port)["whole"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the resource server's channel not whole after {START_TIMEOUT}s")
        time.sleep(0.05)
