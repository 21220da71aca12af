"""Whether pushing session events slows the logout that ends a session: logout with three
receivers against none. The processes are bench.event_stack's.
"""

import statistics
import time
from contextlib import ExitStack, suppress
from functools import partial
from pathlib import Path

import psycopg

from bench import event_stack as stack
from bench.config import Run
from bench.databases import database_url
from bench.measures_speed import alternate, medians, mint
from bench.servers import Pool, free_port, process_cpu_seconds

# Before each paced logout: this long after the previous one ended, on both sides alike;
# then at most this long for the up receivers' queues to empty (a cap hit is counted);
# then this long for what follows a delivery to finish.
GAP_SECONDS = 0.2
IDLE_CAP = 5.0
SETTLE_SECONDS = 0.02
# The receivers this measure registers and deletes when it ends.
RECEIVER_NAMES = ("bench-receiver-1", "bench-receiver-2", "bench-receiver-down")


def receivers(run: Run, pool: Pool) -> dict:
    """Logout p50 over HTTP with three receivers against none, each logout timed with the worker
    idle, on the API server of `events` with its Celery worker and beat running throughout, with
    the product's timings (a heartbeat every 10 s, the outbox polled every 0.25 s, backoff up to
    600 s: `events` shortens them to wait less). Three receivers are registered by
    `add_resource_server`: two reference resource servers, processes of their own that take
    every event, and one down (a loopback port nothing listens on: every push is refused and
    retried with backoff). The sides differ only in the receivers' `enabled` flag, set in the
    database between rounds. On both sides a logout writes one notice in its transaction, which
    the worker fans out after it has answered: into nothing with none enabled, into three outbox
    events with three, which it then delivers. Paced (the judged ratio): before each timed
    logout, on both sides alike, the bench lets 200 ms pass since the previous logout ended
    (delivering its events takes some 70 ms with three; on this VM a request after a longer idle
    is slower, so both sides get the same gap), then polls the outbox every 5 ms on one database
    connection of its own until no notice waits to be fanned out and no event (revocation or
    heartbeat) waits for the two enabled receivers that are up (what waits for the down one
    backs off and is not waited for; the wait is capped at 5 s, and a cap hit is counted), then
    pauses 20 ms more for the worker and the resource servers to finish what follows a delivery.
    So the delivery of one logout's events does not overlap the next timed logout: the paced
    ratio is what the revoking request itself costs with receivers (nothing more in its own
    statements, and whatever background work the cores still do: the beat's dispatch tick,
    heartbeats, retries to the down receiver), which is what "delivery never slows the revoking
    request" claims; not that delivery is free. Back to back (reported, not judged): the same
    logouts with no wait, so each competes with the delivery of the ones before it for this
    machine's cores. Timing starts once both resource servers have heard a heartbeat (the worker
    delivers to them) and the warm-up logouts' events are delivered. The sessions are opened
    beforehand by the session service as a login opens them (`bench.inside.mint`, without the
    login's password check, which is not measured); each round times 20 `POST /auth/logout` per
    side (5 quick; access and refresh token, a fresh connection each) and takes their p50; the
    four sides (paced none and three, back-to-back none and three) alternate A B C D D C B A;
    per side the median over rounds. Each side ends by waiting, untimed, until its own events
    are delivered. Beside it, per logout: the CPU of gunicorn's processes (app) while the
    logouts ran; the CPU the worker (with its beat) and the two resource servers spent from the
    side's start to its end (waits and final delivery included, in clock ticks), and of it what
    they spent while the timed logouts ran (their threads' schedstat, in nanoseconds); on this
    machine they share its cores with the API and PostgreSQL. Afterwards the revocations the two
    resource servers took are counted from their logs, against the two per logout expected.
    """
    v = run.volumes
    server, issuer = stack.events_api(run, pool)
    names = list(RECEIVER_NAMES)
    up_names = names[:-1]
    sides = {"none": (False, True), "three": (True, True)}
    sides |= {"none_busy": (False, False), "three_busy": (True, False)}
    # A warm-up logout per flag, then every round's.
    count = 2 + v.rounds * 2 * len(sides) * v.receiver_logouts
    pairs = iter(mint(run, v.main_db, ours=count, env={**run.env, "JWT_ISSUER": issuer})["ours"])

    def logout() -> float:
        pair = next(pairs)
        return stack.logout(server.port, pair["access"], pair["refresh"])

    # The worker's pid (its beat is a thread of it) and the resource servers'.
    background: list[int] = []
    outbox: list[psycopg.Connection] = []

    def idle(since: float = 0.0) -> tuple[float, bool]:
        return _idle(outbox[0], up_names, since)

    def side(enabled: bool, paced: bool) -> dict:
        stack.set_enabled(v.main_db, names, enabled)
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
        with stack.scratch(run) as scratch:
            with ExitStack() as processes:
                up = _receivers(run, issuer, names, scratch, processes)
                worker = processes.enter_context(
                    stack.worker(run, v.main_db, scratch, issuer, stack.PRODUCT_TIMINGS)
                )
                background.extend([worker, *up.values()])
                outbox.append(
                    processes.enter_context(
                        psycopg.connect(database_url(v.main_db), autocommit=True)
                    )
                )
                for port in up:
                    stack.wait_whole(port)
                for enabled in (False, True):
                    stack.set_enabled(v.main_db, names, enabled)
                    logout()  # warm-up
                    idle()  # its notice fanned out while the flag still holds
                rounds = alternate(
                    v.rounds,
                    {name: partial(side, *flags) for name, flags in sides.items()},
                )
                # What the last rounds left while none were enabled is sent once they are.
                stack.set_enabled(v.main_db, names, True)
                _drain(v.main_db, up_names)
            # The resource servers have stopped: their logs are whole.
            pushed = sum(
                stack.decisions((scratch / f"{name}.log").read_text())["pushed_revocations"]
                for name in up_names
            )
    finally:
        stack.remove(v.main_db, names)
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
        credentials = stack.register(run, name, f"{stack.url(port)}/events")
        log = scratch / f"{name}.log"
        up[port] = processes.enter_context(
            stack.reference(issuer, credentials, port, log, stack.PRODUCT_TIMINGS)
        )
    # Nothing listens there: every push is refused at once.
    stack.register(run, names[-1], f"{stack.url(free_port())}/events")
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
    seconds the outbox was waited for after the gap, and whether the cap was hit. A notice
    not yet fanned out counts as waiting: it is about to become events."""
    time.sleep(max(0.0, since + GAP_SECONDS - time.perf_counter()))
    started = time.perf_counter()
    capped = False
    while conn.execute(
        "SELECT EXISTS (SELECT 1 FROM accounts_outboxevent e JOIN accounts_resourceserver r "
        "ON r.id = e.receiver_id WHERE r.name = ANY(%s) AND r.enabled "
        "AND e.state = 'pending') OR EXISTS (SELECT 1 FROM accounts_pushnotice)",
        [names],
    ).fetchone()[0]:
        if time.perf_counter() - started > IDLE_CAP:
            capped = True
            break
        time.sleep(stack.POLL_SECONDS)
    waited = time.perf_counter() - started
    time.sleep(SETTLE_SECONDS)
    return waited, capped


def _drain(database: str, names: list[str], timeout: float = 10) -> None:
    """Until no revocation waits for these receivers, or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while _waiting(database, names) and time.monotonic() < deadline:
        time.sleep(0.1)


def _waiting(database: str, names: list[str]) -> int:
    """Revocations queued for these receivers and not sent yet, and notices not yet
    fanned out."""
    with psycopg.connect(database_url(database)) as conn:
        (waiting,) = conn.execute(
            "SELECT (SELECT count(*) FROM accounts_outboxevent e JOIN accounts_resourceserver r "
            "ON r.id = e.receiver_id WHERE r.name = ANY(%s) AND e.kind = 'session_revoked' "
            "AND e.state = 'pending') + (SELECT count(*) FROM accounts_pushnotice)",
            [names],
        ).fetchone()
    return waiting
