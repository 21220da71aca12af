"""Operations and guarantees at scale: admin pages, cleanup, the refresh race, two instances."""

import os
import subprocess
import sys
import threading
import time
from collections import Counter

from bench.config import LARGE_DB, MAIN_DB, Run
from bench.databases import ROOT, django_env, inside
from bench.inside import BENCH_USERNAME
from bench.load import request
from bench.measures_speed import REFRESH

REVOKED = "You have been logged out. Please log in again."


def admin(run: Run) -> dict:
    """Changelist render time and queries, on the small and the million-token database."""
    return {
        database: {
            "counts": inside(run.env, database, "counts", log=run.log),
            "pages": inside(run.env, database, "admin_changelists", log=run.log),
        }
        for database in (MAIN_DB, LARGE_DB)
    }


def cleanup(run: Run, timeout: float) -> dict:
    """`manage.py cleanup_tokens` on the million expired rows: wall time and peak RSS."""
    env = django_env(run.env, LARGE_DB)
    command = [sys.executable, "manage.py", "cleanup_tokens"]
    available = subprocess.run(
        [sys.executable, "manage.py", "help", "cleanup_tokens"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    if available.returncode != 0:
        return {"available": False}
    before = inside(run.env, LARGE_DB, "counts", log=run.log)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=run.log, stderr=run.log)
    stopped = False
    while True:
        # wait4 gives this child's own rusage: its peak RSS, not any other child's.
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - started > timeout and not stopped:
            # Keep the whole bench bounded: stop it, and report how far it got.
            process.terminate()
            stopped = True
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    after = inside(run.env, LARGE_DB, "counts", log=run.log)
    return {
        "available": True,
        "exit_code": process.returncode,
        "stopped_after_timeout": stopped,
        "timeout": timeout,
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports kilobytes
        "before": before,
        "after": after,
    }


def _race(port: int, side: str, token: str, size: int) -> dict:
    """`size` simultaneous refreshes of one refresh token: who wins, and what the rest get."""
    path, field, _ = REFRESH[side]
    barrier = threading.Barrier(size)
    statuses: list[int] = []
    lock = threading.Lock()

    def one():
        barrier.wait(timeout=30)
        try:
            status = request(port, "POST", path, body={field: token}).status
        except OSError:
            status = 0  # connection failed: counted apart from any answer
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    seen = Counter(statuses)
    return {
        "winners": seen[200],
        "server_errors": sum(n for s, n in seen.items() if s >= 500),
        "statuses": {str(s): n for s, n in sorted(seen.items())},
    }


def race(run: Run, port: int) -> dict:
    """50 parallel refreshes of one token on gunicorn + PostgreSQL, ours and stock."""
    pairs = inside(run.env, MAIN_DB, "mint", log=run.log, ours=1, stock=1)
    size = run.volumes.race_size
    ours = _race(port, "ours", pairs["ours"][0]["refresh"], size)
    # The losers presented a rotated-out token: reuse detection ends the session.
    after = request(port, "GET", "/todos", token=pairs["ours"][0]["access"])
    ours["access_after"] = {"status": after.status, "error": (after.body or {}).get("error")}
    return {"ours": ours, "stock": _race(port, "stock", pairs["stock"][0]["refresh"], size)}


def two_instances(run: Run, port_a: int, port_b: int) -> dict:
    """Log out on server A, then call server B with the same access token."""
    body = {"username": BENCH_USERNAME, "password": run.password}
    tokens = request(port_a, "POST", "/auth/login", body=body).body
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    before = request(port_b, "GET", "/todos", token=access)
    logout = request(port_a, "POST", "/auth/logout", body={"refresh_token": refresh}, token=access)
    logged_out_at = time.perf_counter()
    after = request(port_b, "GET", "/todos", token=access)
    seconds_after_logout = time.perf_counter() - logged_out_at
    refresh_b = request(port_b, "POST", "/auth/refresh", body={"refresh_token": refresh})
    return {
        "b_before_logout": before.status,
        "a_logout": logout.status,
        "b_after_logout": after.status,
        "b_after_logout_error": (after.body or {}).get("error"),
        "b_after_logout_ms": seconds_after_logout * 1000,
        "b_refresh_after_logout": refresh_b.status,
        "revoked_message": (after.body or {}).get("error") == REVOKED,
    }
