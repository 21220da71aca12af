"""Guarantees and operations: the refresh race, two instances, admin pages, cleanup."""

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import partial

from redis import Redis

from bench.config import BENCH_USERNAME, REFRESHING, SIDES, Run, Side
from bench.databases import ROOT, django_env, django_step, drop, recreate
from bench.load import request
from bench.measures_speed import Chain, mint, percentile
from bench.servers import Pool, gunicorn, process_memory_mb

REVOKED = "You have been logged out. Please log in again."


def _burst(port: int, side: Side, token: str, size: int) -> dict:
    """`size` simultaneous refreshes of one token: statuses, distinct pairs, and after."""
    barrier = threading.Barrier(size)
    answers = []
    lock = threading.Lock()

    def one():
        barrier.wait(timeout=30)
        try:
            response = request(port, "POST", side.refresh, body={side.refresh_field: token})
        except OSError:
            response = None  # connection failed: counted as status 0
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=one) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = Counter(answer.status if answer else 0 for answer in answers)
    pairs = Counter(
        (answer.body[side.access_field], answer.body[side.refresh_field])
        for answer in answers
        if answer and answer.status == 200
    )
    alive = None
    if pairs:
        # Is the session still alive? Refresh once more with the token most answers carried.
        (_, refresh_token), _ = pairs.most_common(1)[0]
        alive = request(port, "POST", side.refresh, body={side.refresh_field: refresh_token})
    return {
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
        "distinct_pairs": len(pairs),
        "alive_status": alive.status if alive else None,
    }


def race(run: Run, pool: Pool) -> dict:
    """Threads released by one barrier POST the same refresh token at once (50 in the full
    run). Reported: the status counts, how many distinct (access, refresh) pairs the 200s
    carried, and whether the session lives on: one more refresh with the refresh token most
    200s carried (200: alive).
    """
    v = run.volumes
    port = pool.get(v.main_db).port
    pairs = mint(run, v.main_db, ours=1, stock=1)
    return {
        name: _burst(port, SIDES[name], pairs[name][0]["refresh"], v.race_size)
        for name in REFRESHING
    }


def instances(run: Run, pool: Pool) -> dict:
    """Two gunicorn servers on one database and the run's Redis, `instance_logouts` times
    (200 in the full run): log in on A and call B with the access token (200), log out on
    A, then at once call B with the same access token, and refresh on B with the
    logged-out refresh token. Reported: B's statuses after the logouts (each must be 401
    with the logged-out message), the wall time from A's answer to B's, the logouts' p50
    on A (each waits for every process's feed to acknowledge), and how many `MGET`s and
    `PUBLISH`es the run's Redis served meanwhile (B decides from its workers' feeds, and
    reads the list in Redis only while a feed is not yet trusted).
    """
    port_a, port_b = pool.get(run.volumes.main_db).port, pool.get(run.volumes.main_db, "b").port
    body = {"username": BENCH_USERNAME, "password": run.password}
    ours = SIDES["ours"]
    redis = Redis.from_url(run.env["REDIS_URL"])
    served = _commands_served(redis)
    before, after, refreshed, revoked, delays = Counter(), Counter(), Counter(), 0, []
    logouts = []
    for _ in range(run.volumes.instance_logouts):
        tokens = request(port_a, "POST", "/auth/login", body=body).body
        access, refresh = tokens["access_token"], tokens["refresh_token"]
        before[request(port_b, "GET", ours.todos, token=access).status] += 1
        logout_began = time.perf_counter()
        logout = request(
            port_a, "POST", "/auth/logout", body={"refresh_token": refresh}, token=access
        )
        logouts.append(time.perf_counter() - logout_began)
        if logout.status != 200:
            raise RuntimeError(f"logout on A answered {logout.status}: {logout.body}")
        logged_out_at = time.perf_counter()
        answer = request(port_b, "GET", ours.todos, token=access)
        delays.append(time.perf_counter() - logged_out_at)
        after[answer.status] += 1
        revoked += (answer.body or {}).get("error") == REVOKED
        refresh_b = request(port_b, "POST", ours.refresh, body={ours.refresh_field: refresh})
        refreshed[refresh_b.status] += 1
    served = _commands_served(redis) - served
    redis.close()
    return {
        "logouts": run.volumes.instance_logouts,
        "b_before_logout": {str(k): n for k, n in before.items()},
        "b_after_logout": {str(k): n for k, n in after.items()},
        "revoked_message": revoked,
        "b_refresh_after_logout": {str(k): n for k, n in refreshed.items()},
        "b_after_logout_ms_p50": percentile(delays, 50) * 1000,
        "b_after_logout_ms_max": max(delays) * 1000,
        "logout_ms_p50": percentile(logouts, 50) * 1000,
        "redis_mgets": served["mget"],
        "redis_publishes": served["publish"],
    }


def _commands_served(redis: Redis) -> Counter:
    """How many MGETs and PUBLISHes `redis` has served since it started."""
    stats = redis.info("commandstats")
    return Counter(
        {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("mget", "publish")}
    )


def admin(run: Run, pool: Pool) -> dict:
    """The test client, as a superuser, renders the changelist of every model of the
    `accounts` and `token_blacklist` apps the admin registers, on the large database against
    the small one; p50 of several renders after a warm-up, queries by `QueryCounter`.
    """
    v = run.volumes
    return {
        size: django_step(
            run.env, db, "bench.inside", "admin_changelists", run.log, renders=v.admin_renders
        )
        for size, db in (("small", v.main_db), ("large", v.large_db))
    }


def _looping(chain: Chain, work) -> tuple[object, dict]:
    """Run work() while a loop of refreshes runs beside it; work's result, the loop's p99."""
    stop, latencies, failures = threading.Event(), [], []

    def loop():
        while not stop.is_set():
            try:
                latencies.append(chain.step())
            except (RuntimeError, OSError) as exc:
                failures.append(str(exc)[:200])  # the first failure ends the loop
                return

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        result = work()
    finally:
        stop.set()
        thread.join(timeout=120)
    if not latencies:
        raise RuntimeError(f"the refresh loop failed at once: {failures}")
    return result, {"n": len(latencies), "failures": failures, "p99": percentile(latencies, 99)}


def _timed(run: Run, database: str, step: str) -> dict:
    """A bench.inside step and its wall time, Django's start included as for a command."""
    started = time.perf_counter()
    result = django_step(run.env, database, "bench.inside", step, run.log)
    return {**result, "seconds": time.perf_counter() - started}


def _cleanup_tokens(run: Run, database: str) -> dict:
    """`manage.py cleanup_tokens`: wall time, exit code, and the child's own peak RSS.

    The peak is the child's VmHWM, read while it runs: wait4's ru_maxrss would count the
    bench's own memory too, since a child starts as a copy of its parent before exec.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "cleanup_tokens"],
        cwd=ROOT,
        env=django_env(run.env, database),
        stdout=run.log,
        stderr=run.log,
    )
    stopped, peak_mb = False, 0.0
    try:
        while True:
            # Once it is exiting, its memory is gone from /proc.
            with contextlib.suppress(OSError, KeyError):
                peak_mb = max(peak_mb, process_memory_mb(process.pid)["peak_mb"])
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > run.volumes.cleanup_timeout and not stopped:
                process.terminate()  # keep the run bounded; the report says where it stopped
                stopped = True
            time.sleep(0.1)
    finally:
        if not pid:
            process.kill()
            process.wait()
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": time.perf_counter() - started,
        "exit_code": process.returncode,
        "stopped": stopped,
        "peak_rss_mb": peak_mb,
    }


def cleanup(run: Run, pool: Pool) -> dict:
    """`seed_sessions --expired --chain=2` seeds a million expired tokens, about half
    blacklisted, with 100,000 expired sessions and their links, and 100,000 security events
    past retention beside a million within it; the database is cloned
    (`CREATE DATABASE ... TEMPLATE`). On the copy, the SQL floor: six statements in one
    transaction (null the sessions' links to expired tokens; delete the session links of
    expired sessions and tokens, the expired sessions, the blacklist rows, the expired
    tokens and the events past retention). On the original, `manage.py cleanup_tokens`.
    Both are timed as processes, Django's start included, each with a loop of sequential
    refreshes against gunicorn on its database beside it; the loop's p99 during
    `cleanup_tokens` is set against the same loop just before. Peak RSS is the child's own
    (its `VmHWM`, read every 0.1 s while it runs); rows/s counts tokens, sessions and
    events. Afterwards the rows per table must be the same on both copies (the loops' rows
    left out).
    """
    v = run.volumes
    large, copy = v.large_db, f"{v.large_db}_copy"
    pool.close()  # CREATE DATABASE ... TEMPLATE needs its template idle

    def counts(database: str, up_to_token: int | None = None) -> dict:
        return django_step(
            run.env, database, "bench.inside", "counts", run.log, up_to_token=up_to_token
        )

    # Rows the refresh loops add (tokens past this id) are left out of every count.
    watermark = counts(large)["max_token_id"]
    loop_token = mint(run, large, ours=1)["ours"][0]["refresh"]
    before = counts(large, watermark)
    recreate(copy, template=large)
    try:
        with gunicorn(run.env, copy, run.log) as server:
            chain = Chain(server.port, SIDES["ours"], loop_token)
            floor, floor_loop = _looping(chain, partial(_timed, run, copy, "cleanup_floor"))
        floor["after"] = counts(copy, watermark)
    finally:
        drop(copy)
    with gunicorn(run.env, large, run.log) as server:
        chain = Chain(server.port, SIDES["ours"], loop_token)
        _, quiet = _looping(chain, lambda: time.sleep(v.cleanup_loop_seconds))
        ours, busy = _looping(chain, partial(_cleanup_tokens, run, large))
    ours["after"] = counts(large, watermark)
    return {
        "before": before,
        "ours": ours,
        "floor": floor,
        "quiet": quiet,
        "busy": busy,
        "floor_loop": floor_loop,
    }
