"""The machine's description and the markdown report written to BENCHMARKS.md."""

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata

from bench import rows
from bench.config import LARGE_DB, Run
from bench.databases import server_version
from bench.servers import THREADS, WORKERS


def machine(run: Run) -> dict:
    """Cores, memory, CPU model, and the versions of everything measured."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        memory_kb = int(meminfo.readline().split()[1])
    wrk = "Python fallback (wrk not installed)"
    if run.wrk:
        out = subprocess.run([run.wrk, "-v"], capture_output=True, text=True, check=False)
        wrk = (out.stdout or out.stderr).split("Copyright")[0].strip()
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "Memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Django": metadata.version("django"),
        "Django REST framework": metadata.version("djangorestframework"),
        "SimpleJWT": metadata.version("djangorestframework-simplejwt"),
        "PostgreSQL": server_version(),
        "psycopg": metadata.version("psycopg"),
        "gunicorn": f"{metadata.version('gunicorn')}, {WORKERS} workers x {THREADS} threads "
        "(gthread)",
        "Load generator": wrk,
    }


def table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def render(results: dict, info: dict, seconds: float, volumes) -> str:
    """The whole BENCHMARKS.md."""
    body = rows.rows(results)
    counts = results.get("admin", {}).get(LARGE_DB, {}).get("counts")
    scale_note = ""
    if counts:
        scale_note = (
            f"The large database held {counts['outstanding_tokens']['n']:,} outstanding tokens "
            f"and {counts['sessions']['n']:,} sessions when the admin was measured."
        )
    return "\n\n".join(
        [
            "# Benchmarks",
            "Produced by `make bench` (`python -m bench`) on "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} minutes. "
            "Ours is `accounts.authentication.SessionJWTAuthentication` and "
            "`POST /auth/refresh`; stock is SimpleJWT's `JWTAuthentication` and "
            "`TokenRefreshView` (rotation + blacklist), mounted by `bench/urls.py` on the same "
            "server, view and data. Each comparison alternates rounds A B A B ... "
            f"({volumes.wrk_rounds} rounds for wrk, {volumes.rounds} for the others) and "
            "compares medians of round results. The machine is shared with other work: "
            "alternating spreads its load over both sides alike.",
            "## Machine",
            table(("", ""), [(k, v) for k, v in info.items()]),
            "## Results",
            table(("measure", "ours", "baseline", "ratio", "target", "result"), body),
            scale_note,
            profile_section(results.get("todos")),
            refresh_section(results.get("refresh")),
            METHOD,
        ]
    )


def profile_section(todos: dict | None) -> str:
    """Where GET /todos spends its authentication time per side, and what it means."""
    if not todos or "profile" not in todos:
        return ""
    profile = todos["profile"]
    parts = list(profile["ours"]["authentication_parts_ms"])
    body = [
        (
            side,
            f"{p['request_ms']:.2f}",
            f"{p['authentication_ms']:.2f}",
            *(f"{p['authentication_parts_ms'].get(part, 0):.2f}" for part in parts),
        )
        for side, p in profile.items()
    ]
    text = [
        "## Where `GET /todos` spends its time",
        "pyinstrument, in-process (Django test client), 200 requests per side after a "
        "warm-up; milliseconds per request, inflated by the profiler alike on every side. "
        "Full profiles: `bench/results/profile-todos-*.txt`.",
        table(("side", "request", "authentication", *parts), body),
    ]
    ours, stock = profile["ours"], profile["stock"]

    def extra(part: str) -> float:
        return ours["authentication_parts_ms"][part] - stock["authentication_parts_ms"][part]

    ratio = todos["ours"]["rps"] / todos["stock"]["rps"]
    cpu_ratio = todos["stock"]["cpu_ms"] / todos["ours"]["cpu_ms"]
    verdict = "meets" if ratio >= 0.95 else "misses"
    text.append(
        f"**Finding.** Throughput {verdict} the target in this run ({ratio:.2f}); server CPU "
        f"per request puts ours at {cpu_ratio:.2f} of stock. In the profile our "
        f"authentication takes {ours['authentication_ms']:.1f} ms per request against "
        f"{stock['authentication_ms']:.1f} ms for stock "
        f"({extra('Django ORM (build SQL, make objects)'):+.1f} ms in the Django ORM, "
        f"{extra('database round trip (psycopg)'):+.1f} ms in the database round trip: a join "
        "instead of one row). An earlier run found the ORM compiling "
        '`Session.objects.select_related("user").get(pk=sid)` on every request to be the whole '
        "gap; `accounts/queries.py` now has the ORM compile that query once per database and "
        "runs it with the session id, still one query."
    )
    return "\n\n".join(text)


def refresh_section(refresh: dict | None) -> str:
    """Where a refresh spends its time per side, ours against stock."""
    if not refresh or "profile" not in refresh:
        return ""
    profile = refresh["profile"]
    parts = list(profile["ours"]["parts_ms"])
    body = [
        (
            side,
            f"{p['request_ms']:.2f}",
            *(f"{p['parts_ms'].get(part, 0):.2f}" for part in parts),
            f"{p['session_lock_query_ms']:.2f}" if side == "ours" else "",
        )
        for side, p in profile.items()
    ]
    ours, stock = profile["ours"], profile["stock"]
    ratio = refresh["ours"]["p50"] / refresh["stock"]["p50"]
    return "\n\n".join(
        [
            "## Where a refresh spends its time",
            "pyinstrument, in-process, 150 chained refreshes per side; milliseconds per "
            "refresh under the profiler. Full profiles: `bench/results/profile-refresh-*.txt`.",
            table(("side", "request", *parts, "session lock query"), body),
            f"**Finding.** Over HTTP ours takes {ratio:.2f} of stock's p50 (target 0.8); "
            f"in-process {ours['request_ms'] / stock['request_ms']:.2f}. Stock spends its "
            "time on 9 queries and 7 server commits; ours on 5 queries in one transaction, "
            "the session lock query (`SELECT ... FOR UPDATE OF` the session row) is compiled "
            "once per process, like the authentication query above.",
        ]
    )


METHOD = """## How each number is taken

- **`GET /todos`**: `wrk` with 32 connections, 3 s per round, against `/todos` (ours) and
  `/stock/todos` (the same `TodoViewSet`, `authentication_classes = (JWTAuthentication,)`).
  The user has 20 todos. Ratio: ours / stock throughput; per-round ratios in brackets.
  Server CPU per request: user + system time of gunicorn's processes and the database's
  backends during the round, divided by the requests wrk completed.
- **Refresh queries**: in-process through the URLconf with Django's `execute_wrapper`; a
  transaction is counted when an atomic block commits or rolls back (BEGIN/COMMIT are not
  queries). "outside" = statements run in autocommit, each its own transaction on the server.
- **Refresh p50**: sequential chains of refreshes over HTTP (each uses the token the last one
  returned), a fresh connection per request. Ratio: ours / stock.
- **Login**: p50 of `POST /auth/login` over HTTP divided by p50 of one
  `PBKDF2PasswordHasher.verify` of the same user's hash (Django's default hasher and
  iterations, not the tests' MD5), alternating.
- **Scale**: two servers, one on the small database (about 1,000 outstanding tokens), one on
  a copy holding 1,000,000 more outstanding tokens and 200,000 more sessions (seeded by
  `manage.py seed_sessions --expired`: the rows that pile up between cleanups; index sizes
  and lookups are those of live rows). Ratio: large / small.
- **Admin**: the Django test client, logged in as a superuser, renders each session and token
  changelist the admin registers; p50 of 5 renders after one warm-up.
- **Cleanup**: `manage.py cleanup_tokens` on the large database; peak RSS from the child's own
  rusage (`os.wait4`).
- **Race**: 50 threads released by one barrier, each POSTing the same refresh token. Ours
  answers 401 to the 49 losers and ends the session (reuse detection, RFC 9700 §4.14.2).
- **Two instances**: two gunicorn servers on one database; log in and out on A, then call B.
"""
