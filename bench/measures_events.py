"""Session events: how soon a logout at the API is a 401 at a resource server that hears
pushed events. The processes are bench.event_stack's.
"""

import math
import random
import statistics
import time

from bench import event_stack as stack
from bench.config import BENCH_USERNAME, Run
from bench.load import request
from bench.measures_speed import percentile
from bench.servers import Pool, free_port

# A logout not refused by then is a failure, and the measure moves on.
REFUSAL_CAP = 5.0
# A random pause before each logout, so logouts don't phase-lock with the dispatch tick.
MAX_PAUSE = 0.2
# The receiver this measure registers and deletes when it ends, so no other measure's
# logout queues events for it, nor counts its rows.
REFERENCE_NAME = "bench-reference"


def _until_refused(api: int, rs: int, login: dict) -> float | str:
    """Log in, see the resource server accept the token, log out: the seconds from the
    logout's 200 to the resource server's first 401, or what went wrong instead."""
    answer = request(api, "POST", "/auth/login", body=login)
    if answer.status != 200:
        raise RuntimeError(f"login answered {answer.status}: {answer.body}")
    access, refresh = answer.body["access_token"], answer.body["refresh_token"]
    before = request(rs, "GET", "/whoami", token=access).status
    time.sleep(random.uniform(0, MAX_PAUSE))
    stack.logout(api, access, refresh)
    logged_out = time.perf_counter()
    if before != 200:
        return f"whoami answered {before} before the logout"
    while (status := request(rs, "GET", "/whoami", token=access).status) != 401:
        if time.perf_counter() - logged_out > REFUSAL_CAP:
            return f"whoami still answered {status} {REFUSAL_CAP:.0f} s after the logout"
        time.sleep(stack.POLL_SECONDS)
    return time.perf_counter() - logged_out


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
    server, issuer = stack.events_api(run, pool)
    rs_port = free_port()
    try:
        credentials = stack.register(run, REFERENCE_NAME, f"{stack.url(rs_port)}/events")
        with stack.scratch(run) as scratch:
            log = scratch / "reference.log"
            with (
                stack.worker(run, v.main_db, scratch, issuer),
                stack.reference(issuer, credentials, rs_port, log),
            ):
                stack.wait_whole(rs_port)
                started_at = stack.health(rs_port)["started_at"]
                # Tokens issued before it started are introspected: `iat` is whole seconds.
                time.sleep(max(0.0, math.ceil(started_at) - time.time()))
                login = {"username": BENCH_USERNAME, "password": run.password}
                outcomes = [
                    _until_refused(server.port, rs_port, login) for _ in range(v.event_logouts)
                ]
            decisions = stack.decisions(log.read_text())
    finally:
        stack.remove(v.main_db, [REFERENCE_NAME])
    delays = [outcome for outcome in outcomes if isinstance(outcome, float)]
    return {
        "n": len(outcomes),
        "p50": statistics.median(delays) if delays else None,
        "p99": percentile(delays, 99) if delays else None,
        "max": max(delays, default=None),
        "failures": [outcome for outcome in outcomes if isinstance(outcome, str)],
        **decisions,
    }
