"""Session events: how soon a logout at the API is a 401 at a resource server that hears
pushed events, and whether pushing them slows the logout itself.

Every part is a process of its own, as `make run` and `make resource-server` start them:
the API (gunicorn), the Celery worker with its beat on the run's Redis, and the reference
resource server (examples/resource_server).
"""

import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from functools import partial
from pathlib import Path

import psycopg

from bench.config import BENCH_USERNAME, Run
from bench.databases import ROOT, database_url, django_env, manage
from bench.load import request
from bench.measures_speed import alternate, medians, mint, percentile
from bench.servers import Pool, Server, _stop, free_port, process_cpu_seconds

# The short intervals of tests/test_event_delivery.py, so a run waits seconds, not minutes:
# a heartbeat each second (the resource server trusts its channel for 3), the outbox polled
# each tenth of a second, backoff at most 1 s. Production's defaults: 10 s and 0.25 s.
TIMINGS = {
    "EVENTS_HEARTBEAT_SECONDS": "1",
    "EVENTS_DISPATCH_SECONDS": "0.1",
    "EVENTS_MAX_BACKOFF_SECONDS": "1",
}
REFERENCE = ROOT / "examples" / "resource_server" / "server.py"
START_TIMEOUT = 30.0
# A logout not refused by then is a failure, and the measure moves on.
REFUSAL_CAP = 5.0
POLL_SECONDS = 0.005
# A random pause before each logout, so logouts don't phase-lock with the dispatch tick.
MAX_PAUSE = 0.2
# Before each paced logout of `receivers`: this long after the previous one ended, on both
# sides alike; then at most this long for the up receivers' queues to empty (a cap hit is
# counted); then this long for what follows a delivery to finish.
GAP_SECONDS = 0.2
IDLE_CAP = 5.0
SETTLE_SECONDS = 0.02
# The receivers these measures register; each measure deletes its own when it ends, so no
# other measure's logout queues events for them, nor counts their rows.
REFERENCE_NAME = "bench-reference"
RECEIVER_NAMES = ("bench-receiver-1", "bench-receiver-2", "bench-receiver-down")


@contextmanager
def _scratch(run: Run) -> Iterator[Path]:
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
def _process(argv: list[str], env: dict, log: Path) -> Iterator[subprocess.Popen]:
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
        _stop(process)


def _wait_until(ready: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    """Poll ready() until it holds; fail if `process` exits or START_TIMEOUT passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see the bench log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {START_TIMEOUT:.0f}s; see the bench log")
        time.sleep(0.05)


@contextmanager
def _worker(run: Run, database: str, scratch: Path, issuer: str) -> Iterator[int]:
    """The Celery worker with its beat, with the argv of tests/appservers.EventWorker, on
    the run's Redis; yields its pid once it logs that it is ready."""
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
    env = {**django_env(run.env, database), **TIMINGS, "JWT_ISSUER": issuer}
    with _process(argv, env, log) as process:
        _wait_until(lambda: "ready." in log.read_text(), process, "the Celery worker")
        yield process.pid


@contextmanager
def _reference(issuer: str, credentials: dict, port: int, log: Path) -> Iterator[int]:
    """The reference resource server on 127.0.0.1:`port`; yields its pid once it listens."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "RS_ISSUER": issuer,
        "RS_LISTEN": f"127.0.0.1:{port}",
        "RS_CLIENT_ID": credentials["client_id"],
        "RS_CLIENT_SECRET": credentials["client_secret"],
        "RS_HEARTBEAT_SECONDS": TIMINGS["EVENTS_HEARTBEAT_SECONDS"],
        # Same machine, same clock: a token issued after its start is trusted at once.
        "RS_LEEWAY_SECONDS": "0",
    }
    with _process([sys.executable, str(REFERENCE)], env, log) as process:
        _wait_until(lambda: "listening on" in log.read_text(), process, "the resource server")
        yield process.pid


def _health(port: int) -> dict:
    """The resource server's /healthz: whether its channel is whole, when it started."""
    return request(port, "GET", "/healthz").body


def _events_api(run: Run, pool: Pool) -> tuple[Server, str]:
    """The API server of these measures and its issuer: its own URL, where a resource
    server reads its metadata and keys (so the port is chosen before it starts)."""
    port = free_port()
    server = pool.get(run.volumes.main_db, "events", port=port, JWT_ISSUER=_url(port))
    return server, _url(server.port)


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _register(run: Run, name: str, push_url: str) -> dict:
    """`manage.py add_resource_server NAME --replace --push-url URL`, enabled; the client_id
    and client_secret it prints."""
    output = manage(
        run.env,
        run.volumes.main_db,
        *("add_resource_server", name, "--replace", "--push-url", push_url),
        log=run.log,
    )
    _set_enabled(run.volumes.main_db, [name], True)
    return json.loads(output.strip().splitlines()[-1])


def _set_enabled(database: str, names: list[str], enabled: bool) -> None:
    """Enable or disable receivers: a logout queues events for the enabled ones alone, and
    the worker sends to them alone (accounts.push.receivers)."""
    with psycopg.connect(database_url(database), autocommit=True) as conn:
        conn.execute(
            "UPDATE accounts_resourceserver SET enabled = %s WHERE name = ANY(%s)",
            [enabled, names],
        )


def _remove(database: str, names: list[str]) -> None:
    """Delete these receivers and their queues, in one transaction."""
    with psycopg.connect(database_url(database)) as conn:
        ids = "SELECT id FROM accounts_resourceserver WHERE name = ANY(%s)"
        conn.execute(f"DELETE FROM accounts_outboxevent WHERE receiver_id IN ({ids})", [names])
        conn.execute("DELETE FROM accounts_resourceserver WHERE name = ANY(%s)", [names])


def _logout(port: int, access: str, refresh: str) -> float:
    """`POST /auth/logout` with both tokens; its wall time. Anything but 200 stops the measure."""
    answer = request(port, "POST", "/auth/logout", body={"refresh_token": refresh}, token=access)
    if answer.status != 200:
        raise RuntimeError(f"logout answered {answer.status}: {answer.body}")
    return answer.seconds


def _until_refused(api: int, rs: int, login: dict) -> float | str:
    """Log in, see the resource server accept the token, log out: the seconds from the
    logout's 200 to the resource server's first 401, or what went wrong instead."""
    answer = request(api, "POST", "/auth/login", body=login)
    if answer.status != 200:
        raise RuntimeError(f"login answered {answer.status}: {answer.body}")
    access, refresh = answer.body["access_token"], answer.body["refresh_token"]
    before = request(rs, "GET", "/whoami", token=access).status
    time.sleep(random.uniform(0, MAX_PAUSE))
    _logout(api, access, refresh)
    logged_out = time.perf_counter()
    if before != 200:
        return f"whoami answered {before} before the logout"
    while (status := request(rs, "GET", "/whoami", token=access).status) != 401:
        if time.perf_counter() - logged_out > REFUSAL_CAP:
            return f"whoami still answered {status} {REFUSAL_CAP:.0f} s after the logout"
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - logged_out


def _decisions(log: str) -> dict:
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


def events(run: Run, pool: Pool) -> dict:
    """`make run` + `make resource-server` as processes: the API (gunicorn, `JWT_ISSUER` its
    own URL), the Celery worker with its beat (`--pool threads`, as `make run` starts it,
    on the run's Redis), and the reference resource server (examples/resource_server),
    registered by `manage.py add_resource_server`. Timings shortened as in
    tests/test_event_delivery.py: the outbox polled every 0.1 s (`EVENTS_DISPATCH_SECONDS`;
    production's default is 0.25 s), a heartbeat each second (`EVENTS_HEARTBEAT_SECONDS`
    and `RS_HEARTBEAT_SECONDS` 1: the channel is trusted for 3 s; default 10), backoff at
    most 1 s, `RS_LEEWAY_SECONDS` 0. Once the resource server's channel is whole, 50 times
    (10 quick): log in as the bench user, `GET /whoami` on the resource server (200
    expected), a random pause of 0-200 ms (so logouts don't phase-lock with the dispatch
    tick), `POST /auth/logout`, then `GET /whoami` every 5 ms until it answers 401.
    Reported: p50, p99 (linear interpolation) and max of the seconds from the logout's 200
    to the first 401 (to within one poll, about 6 ms); a token not accepted before its
    logout, or still not refused 5 s after, is a failure. From the resource server's log:
    how many 401s named a session it had heard was revoked, how many revocations were
    pushed to it, and how many decisions asked the API by introspection (none expected).
    """
    v = run.volumes
    server, issuer = _events_api(run, pool)
    rs_port = free_port()
    try:
        credentials = _register(run, REFERENCE_NAME, f"{_url(rs_port)}/events")
        with _scratch(run) as scratch:
            log = scratch / "reference.log"
            with (
                _worker(run, v.main_db, scratch, issuer),
                _reference(issuer, credentials, rs_port, log),
            ):
                _wait_whole(rs_port)
                started_at = _health(rs_port)["started_at"]
                # Tokens issued before it started are introspected: `iat` is whole seconds.
                time.sleep(max(0.0, math.ceil(started_at) - time.time()))
                login = {"username": BENCH_USERNAME, "password": run.password}
                outcomes = [
                    _until_refused(server.port, rs_port, login) for _ in range(v.event_logouts)
                ]
            decisions = _decisions(log.read_text())
    finally:
        _remove(v.main_db, [REFERENCE_NAME])
    delays = [outcome for outcome in outcomes if isinstance(outcome, float)]
    return {
        "n": len(outcomes),
        "p50": statistics.median(delays) if delays else None,
        "p99": percentile(delays, 99) if delays else None,
        "max": max(delays, default=None),
        "failures": [outcome for outcome in outcomes if isinstance(outcome, str)],
        **decisions,
    }


def _wait_whole(port: int) -> None:
    """Until the resource server trusts its channel: a heartbeat heard since it started."""
    deadline = time.monotonic() + START_TIMEOUT
    while not _health(port)["whole"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the resource server's channel not whole after {START_TIMEOUT}s")
        time.sleep(0.05)


def receivers(run: Run, pool: Pool) -> dict:
    """Logout p50 over HTTP with three receivers against none, each logout timed with the
    worker idle, on the API server of `events` with its Celery worker and beat running
    throughout (same timings). Three receivers are registered by `add_resource_server`:
    two reference resource servers, processes of their own that take every event, and one
    down (a loopback port nothing listens on: every push is refused and retried, backoff up
    to 1 s). The sides differ only in the receivers' `enabled` flag, set in the database
    between rounds: with none enabled a logout queues nothing; with three, it writes three
    outbox rows in its transaction, which the worker delivers after it has answered. Paced
    (the judged ratio): before each timed logout, on both sides alike, the bench lets 200
    ms pass since the previous logout ended (delivering its events takes some 70 ms with
    three; on this VM a request after a longer idle is slower, so both sides get the same
    gap), then polls the outbox every 5 ms on one database connection of its own until no
    event (revocation or heartbeat) waits for the two enabled receivers that are up (what
    waits for the down one backs off and is not waited for; the wait is capped at 5 s, and
    a cap hit is counted), then pauses 20 ms more for the worker and the resource servers
    to finish what follows a delivery. So the delivery of one logout's events does not
    overlap the next timed logout: the paced ratio is what the revoking request itself
    costs with receivers (its two extra statements, and whatever background work the
    cores still do: the beat's dispatch tick, heartbeats, retries to the down receiver),
    which is what "delivery never slows the revoking request" claims; not that delivery is
    free. Back to back
    (reported, not judged): the same logouts with no wait, so each competes with the
    delivery of the ones before it for this machine's cores. Timing starts once both
    resource servers have heard a heartbeat (the worker delivers to them) and the warm-up
    logouts' events are delivered. The sessions are opened beforehand by the session
    service as a login opens them (`bench.inside.mint`, without the login's password
    check, which is not measured); each round times 20 `POST /auth/logout` per side (5
    quick; access and refresh token, a fresh connection each) and takes their p50; the
    four sides (paced none and three, back-to-back none and three) alternate A B C D D C B
    A; per side the median over rounds. Each side ends by waiting, untimed, until its own
    events are delivered. Beside it, per logout: the CPU of gunicorn's processes (app)
    while the logouts ran; the CPU the worker (with its beat) and the two resource servers
    spent from the side's start to its end (waits and final delivery included, in clock
    ticks), and of it what they spent while the timed logouts ran (their threads'
    schedstat, in nanoseconds); on this machine they share its cores with the API and
    PostgreSQL. Afterwards the revocations the two resource servers took are counted from
    their logs, against the two per logout expected.
    """
    v = run.volumes
    server, issuer = _events_api(run, pool)
    names = list(RECEIVER_NAMES)
    up_names = names[:-1]
    sides = {"none": (False, True), "three": (True, True)}
    sides |= {"none_busy": (False, False), "three_busy": (True, False)}
    # A warm-up logout per flag, then every round's.
    count = 2 + v.rounds * 2 * len(sides) * v.receiver_logouts
    pairs = iter(mint(run, v.main_db, ours=count, env={**run.env, "JWT_ISSUER": issuer})["ours"])

    def logout() -> float:
        pair = next(pairs)
        return _logout(server.port, pair["access"], pair["refresh"])

    # The worker's pid (its beat is a thread of it) and the resource servers'.
    background: list[int] = []
    outbox: list[psycopg.Connection] = []

    def idle(since: float = 0.0) -> tuple[float, bool]:
        return _idle(outbox[0], up_names, since)

    def side(enabled: bool, paced: bool) -> dict:
        _set_enabled(v.main_db, names, enabled)
        n = v.receiver_logouts
        waits: list[tuple[float, bool]] = []
        during: list[int] = []
        # When the last logout ended; the side's first follows its start by the same gap.
        ended = [time.perf_counter()]

        def once() -> float:
            if paced:
                waits.append(idle(ended[0]))
            before = _cpu_ns(background)
            seconds = logout()
            ended[0] = time.perf_counter()
            during.append(_cpu_ns(background) - before)
            return seconds

        before = sum(map(process_cpu_seconds, background))
        seconds, app, _ = server.cpu_during(lambda: [once() for _ in range(n)])
        # Untimed: this side's own events are delivered before the next side begins.
        final = idle()
        spent = sum(map(process_cpu_seconds, background)) - before
        return {
            "p50": statistics.median(seconds),
            "cpu_app_ms": app * 1000 / n,
            # What competed with the logouts for the CPU, and delivered their events.
            "background_cpu_ms": spent * 1000 / n,
            # What they spent while a timed logout ran: none, if the machine was idle.
            "during_cpu_ms": sum(during) / 1e6 / n,
            # How long the outbox kept the next logout waiting past the gap, on average.
            "wait_ms": statistics.fmean(w for w, _ in waits) * 1000 if waits else 0.0,
            "capped": sum(capped for _, capped in [*waits, final]),
        }

    try:
        with _scratch(run) as scratch:
            with ExitStack() as processes:
                up = _receivers(run, issuer, names, scratch, processes)
                worker = processes.enter_context(_worker(run, v.main_db, scratch, issuer))
                background.extend([worker, *up.values()])
                outbox.append(
                    processes.enter_context(
                        psycopg.connect(database_url(v.main_db), autocommit=True)
                    )
                )
                for port in up:
                    _wait_whole(port)
                for enabled in (False, True):
                    _set_enabled(v.main_db, names, enabled)
                    logout()  # warm-up
                idle()
                rounds = alternate(
                    v.rounds,
                    {name: partial(side, *flags) for name, flags in sides.items()},
                )
                # What the last rounds left while none were enabled is sent once they are.
                _set_enabled(v.main_db, names, True)
                _drain(v.main_db, up_names)
            # The resource servers have stopped: their logs are whole.
            pushed = sum(
                _decisions((scratch / f"{name}.log").read_text())["pushed_revocations"]
                for name in up_names
            )
    finally:
        _remove(v.main_db, names)
    # With three enabled: the warm-up, then both three sides of every round.
    logouts = 1 + v.rounds * 2 * 2 * v.receiver_logouts
    return {
        **{
            name: {**medians(samples), "capped": sum(s["capped"] for s in samples)}
            for name, samples in rounds.items()
        },
        "pushed": pushed,
        "expected": len(up) * logouts,
    }


def _receivers(
    run: Run, issuer: str, names: list[str], scratch: Path, processes: ExitStack
) -> dict[int, int]:
    """Register every receiver of `names`: a reference resource server for each but the last,
    which is down; the port and pid of each that is up."""
    up = {}
    for name in names[:-1]:
        port = free_port()
        credentials = _register(run, name, f"{_url(port)}/events")
        log = scratch / f"{name}.log"
        up[port] = processes.enter_context(_reference(issuer, credentials, port, log))
    # Nothing listens there: every push is refused at once.
    _register(run, names[-1], f"{_url(free_port())}/events")
    return up


def _cpu_ns(pids: list[int]) -> int:
    """CPU nanoseconds these processes' threads have run (schedstat: not in clock ticks)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with suppress(OSError, ValueError, IndexError):  # a thread that just ended
                total += int(task.read_text().split()[0])
    return total


def _idle(conn: psycopg.Connection, names: list[str], since: float = 0.0) -> tuple[float, bool]:
    """Until GAP_SECONDS have passed since `since` (a perf_counter); then until no event
    waits for these receivers while they are enabled (the worker sends to enabled ones
    alone), polled on `conn`, at most IDLE_CAP seconds; then SETTLE_SECONDS more. The
    seconds the outbox was waited for after the gap, and whether the cap was hit."""
    time.sleep(max(0.0, since + GAP_SECONDS - time.perf_counter()))
    started = time.perf_counter()
    capped = False
    while conn.execute(
        "SELECT EXISTS (SELECT 1 FROM accounts_outboxevent e JOIN accounts_resourceserver r "
        "ON r.id = e.receiver_id WHERE r.name = ANY(%s) AND r.enabled "
        "AND e.state = 'pending')",
        [names],
    ).fetchone()[0]:
        if time.perf_counter() - started > IDLE_CAP:
            capped = True
            break
        time.sleep(POLL_SECONDS)
    waited = time.perf_counter() - started
    time.sleep(SETTLE_SECONDS)
    return waited, capped


def _drain(database: str, names: list[str], timeout: float = 10) -> None:
    """Until no revocation waits for these receivers, or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while _waiting(database, names) and time.monotonic() < deadline:
        time.sleep(0.1)


def _waiting(database: str, names: list[str]) -> int:
    """Revocations queued for these receivers and not sent yet."""
    with psycopg.connect(database_url(database)) as conn:
        (waiting,) = conn.execute(
            "SELECT count(*) FROM accounts_outboxevent e JOIN accounts_resourceserver r "
            "ON r.id = e.receiver_id WHERE r.name = ANY(%s) AND e.kind = 'session_revoked' "
            "AND e.state = 'pending'",
            [names],
        ).fetchone()
    return waiting
