"""The report: the machine, one row per result with its target, and how each was measured."""

import os
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata

from bench.config import ALGORITHM, HMAC_ALGORITHM
from bench.databases import server_version
from bench.load import require_wrk
from bench.servers import THREADS, WORKERS

HEADER = ("measure", "A", "B", "A / B", "target", "result")
TABLES = (
    "sessions",
    "session_tokens",
    "blacklisted_tokens",
    "outstanding_tokens",
    "security_events",
)
# measure, row, A and B as "side.key" of each run's result, target of A / B. The ratio
# is the median over runs of each run's A / B, with min-max beside it for several runs.
# fmt: off
RATIOS = (
    ("todos", "`GET /todos` CPU/request, app", "stock.cpu_app_ms", "ours.cpu_app_ms", ">= 0.95"),
    ("todos", "`GET /todos` CPU/request, app + db + Redis", "stock.cpu_all_ms",
     "ours.cpu_all_ms", ">= 0.95"),
    ("todos", "`GET /todos` CPU/request, app", "stateless.cpu_app_ms", "ours.cpu_app_ms",
     ">= 0.95"),
    ("todos", "`GET /todos` CPU/request, app + db + Redis", "stateless.cpu_all_ms",
     "ours.cpu_all_ms", ""),
    ("todos", "`GET /todos` CPU/request, app", "ours.cpu_app_ms", "floor.cpu_app_ms", "<= 1.5"),
    ("todos", "`GET /todos` CPU/request, app + db + Redis", "ours.cpu_all_ms",
     "floor.cpu_all_ms", ""),
    ("todos", "`GET /todos` throughput (bimodal here)", "ours.rps", "stock.rps", ""),
    ("refresh", "refresh p50 over HTTP", "ours.p50", "stock.p50", "<= 0.8"),
    ("login", "login p50 / one password check, same server", "login.p50", "check.p50",
     "<= 1.05"),
    ("login", "login p50 / one PBKDF2 verify, bench process", "login.p50", "verify.p50", ""),
    ("algorithm", f"`GET /todos` CPU/request, app, ours: {ALGORITHM} / {HMAC_ALGORITHM}",
     f"{ALGORITHM.lower()}.cpu_app_ms", f"{HMAC_ALGORITHM.lower()}.cpu_app_ms", ""),
    ("algorithm", f"`GET /todos` CPU/request, app + db, ours: {ALGORITHM} / {HMAC_ALGORITHM}",
     f"{ALGORITHM.lower()}.cpu_all_ms", f"{HMAC_ALGORITHM.lower()}.cpu_all_ms", ""),
    ("algorithm", "one verification in-process, our token backend",
     f"{ALGORITHM.lower()}.verify_ours_us", f"{HMAC_ALGORITHM.lower()}.verify_ours_us", ""),
    ("algorithm", "one verification in-process, PyJWT alone",
     f"{ALGORITHM.lower()}.verify_pyjwt_us", f"{HMAC_ALGORITHM.lower()}.verify_pyjwt_us", ""),
    ("scale", "scale: refresh p50, 1M vs 1k tokens", "large.refresh_p50", "small.refresh_p50",
     "<= 1.2"),
    ("scale", "scale: authenticated GET p50, 1M vs 1k", "large.get_p50", "small.get_p50",
     "<= 1.2"),
    ("cleanup", "cleanup: `cleanup_tokens` vs SQL floor", "ours.seconds", "floor.seconds",
     "<= 1.3"),
    ("cleanup", "cleanup: refresh p99 during vs without", "busy.p99", "quiet.p99", "<= 2.0"),
    ("receivers", "logout p50, worker idle before each: three receivers (one down) / none",
     "three.p50", "none.p50", "<= 1.1"),
    ("receivers", "logout p50 back to back, delivery beside it: three / none",
     "three_busy.p50", "none_busy.p50", ""),
)
# fmt: on


def machine() -> dict:
    """Cores, memory, load, and the versions of everything measured."""
    with open("/proc/cpuinfo") as cpuinfo:
        cpus = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    with open("/proc/meminfo") as meminfo:
        memory_kb = int(meminfo.readline().split()[1])
    wrk = subprocess.run([require_wrk(), "-v"], capture_output=True, text=True, check=False)
    versions = ("Django", "djangorestframework", "djangorestframework-simplejwt", "psycopg")
    return {
        "CPU": f"{cpus[0] if cpus else 'unknown'}, {os.cpu_count()} cores",
        "Memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "Load average at start": " ".join(f"{n:.2f}" for n in os.getloadavg()),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        **{name: metadata.version(name) for name in versions},
        "PostgreSQL": server_version(),
        "gunicorn": f"{metadata.version('gunicorn')}, {WORKERS} workers x {THREADS} threads",
        "Load generator": (wrk.stdout or wrk.stderr).split("Copyright")[0].strip(),
        "Tokens": f"{ALGORITHM}, one 2,048-bit key pair per run for ours, stock and the floor",
    }


def _get(run: dict, path: str) -> float:
    side, key = path.split(".")
    return run[side][key]


def _shown(path: str, runs: list[dict]) -> str:
    """The median over runs of one value, named by its side; seconds are shown as ms."""
    side, key = path.split(".")
    value = statistics.median(_get(run, path) for run in runs)
    if key == "rps":
        return f"{side} {value:,.0f}/s"
    if key == "seconds":
        return f"{side} {value:.1f} s"
    if key.endswith("_us"):
        return f"{side} {value:.0f} µs"
    return f"{side} {value if key.endswith('_ms') else value * 1000:.2f} ms"


def _row(measure: str, a: str, b: str, target: str, ok: bool | None, ratio: str = "") -> tuple:
    """One table row; `ok` None means the row is reported, not judged."""
    return (measure, a, b, ratio, target, "" if ok is None else "met" if ok else "**missed**")


def _ratio(runs: list[dict], measure: str, a: str, b: str, target: str) -> tuple:
    """One RATIOS row: the median ratio over runs, its spread, and the verdict."""
    ratios = [_get(run, a) / _get(run, b) for run in runs]
    middle = statistics.median(ratios)
    spread = f" ({min(ratios):.3f}-{max(ratios):.3f}, {len(runs)} runs)" if len(runs) > 1 else ""
    op, _, bound = target.partition(" ")
    ok = None if not op else middle >= float(bound) if op == ">=" else middle <= float(bound)
    return _row(
        measure, _shown(a, runs), _shown(b, runs), target or "report", ok, f"{middle:.3f}{spread}"
    )


_queries = (
    "{queries} queries ({writes} writes) in {transactions} transactions, {autocommit} in autocommit"
).format_map
_page = "{p50_ms:.0f} ms, {queries} queries, HTTP {status}, {rows:,} rows".format_map


def _statuses(counts: dict) -> str:
    return ", ".join(f"{n} x {status}" for status, n in sorted(counts.items()))


def _instances(r: dict) -> tuple:
    """The two-instances row: every call on B after a logout on A must be refused."""
    n = r["logouts"]
    ok = r["b_after_logout"] == {"401": n} and r["revoked_message"] == n
    return _row(
        f"two instances: {n} logouts on A, each followed at once by a call on B",
        f"B after: {_statuses(r['b_after_logout'])} ({r['revoked_message']} logged-out "
        f"messages), p50 {r['b_after_logout_ms_p50']:.1f} ms, max "
        f"{r['b_after_logout_ms_max']:.1f} ms after A's answer",
        f"B before: {_statuses(r['b_before_logout'])}; refresh on B after: "
        f"{_statuses(r['b_refresh_after_logout'])}; logout p50 on A "
        f"{r.get('logout_ms_p50', 0):.1f} ms; Redis served {r['redis_mgets']:,} MGETs and "
        f"{r.get('redis_publishes', 0):,} PUBLISHes",
        "401 every time",
        ok and r["b_refresh_after_logout"] == {"401": n},
    )


def _todo_queries(r: dict) -> tuple:
    """Queries of one steady-state `GET /todos` per side; ours must run the todo query only."""
    shown = {
        name: f"{name} {side['queries']} ({', '.join(side['tables'])})" for name, side in r.items()
    }
    return _row(
        "`GET /todos` queries per request, steady state",
        shown.pop("ours"),
        "; ".join(shown.values()),
        "ours: the todo query only",
        r["ours"]["queries"] == 1 and r["ours"]["tables"] == r["stateless"]["tables"],
    )


def _burst(r: dict) -> str:
    alive = {200: "alive", None: "no pair to try"}.get(
        r["alive_status"], f"ended ({r['alive_status']})"
    )
    statuses = ", ".join(f"{n} x {status}" for status, n in r["statuses"].items())
    return f"{statuses}; {r['distinct_pairs']} distinct pairs; session {alive}"


def _memory(r: dict) -> tuple:
    """The memory row: the worker's peak before and after the burst, and what it served."""
    before, after, count = r["before"], r["after"], r["concurrent"]
    statuses = ", ".join(f"{n} x {status}" for status, n in r["statuses"].items())
    return _row(
        f"memory: {count} parallel `GET /todos` of {r['todos']:,} todos "
        f"({r['title_length']:,} + {r['description_length']:,} characters each)",
        f"worker peak RSS {before['peak_mb']:.0f} MB before, {after['peak_mb']:.0f} MB after "
        f"(+{after['peak_mb'] - before['peak_mb']:.0f} MB); RSS after {after['rss_mb']:.0f} MB",
        f"{statuses}, {r['complete']} whole lists; body {r['body_bytes'] / 1e6:.2f} MB; "
        f"slowest {r['slowest_seconds']:.2f} s",
        "all 200 and whole",
        r["statuses"] == {"200": count} and r["complete"] == count,
    )


def _events(r: dict) -> tuple:
    """The session events row: logout to the resource server's 401, and how it was refused."""
    if r["p99"] is None:
        delays = "no 401 seen"
    else:
        delays = ", ".join(f"{key} {r[key] * 1000:.0f} ms" for key in ("p50", "p99", "max"))
    return _row(
        f"events: logout → resource server 401, {r['n']} logouts",
        delays,
        f"{len(r['failures'])} failures; {r['refused_as_revoked']} refused as revoked by a "
        f"pushed event ({r['pushed_revocations']} pushed), {r['introspections']} decisions "
        "by introspection",
        "p99 < 1 s",
        r["p99"] is not None and r["p99"] < 1 and not r["failures"],
    )


def _receivers(r: dict, paced: bool) -> tuple:
    """A receivers row: CPU per logout, three vs none, paced or back to back."""
    three, none = (r["three"], r["none"]) if paced else (r["three_busy"], r["none_busy"])
    if paced:
        how = "worker idle before each"
        waits = (
            f"outbox wait past the 200 ms gap, mean {three['wait_ms']:.1f} vs "
            f"{none['wait_ms']:.1f} ms, "
            f"{three['capped'] + none['capped']} capped at 5 s"
        )
    else:
        how = "back to back"
        waits = (
            f"revocations the two up receivers took: {r['pushed']} of {r['expected']}; "
            f"{three['capped'] + none['capped']} drains capped at 5 s"
        )
    return _row(
        f"receivers: per logout, three vs none, {how} (first run)",
        f"app CPU {three['cpu_app_ms']:.2f} vs {none['cpu_app_ms']:.2f} ms; worker + "
        f"receivers CPU {three['background_cpu_ms']:.2f} vs {none['background_cpu_ms']:.2f} ms, "
        f"of which during the timed logouts {three['during_cpu_ms']:.2f} vs "
        f"{none['during_cpu_ms']:.2f} ms",
        waits,
        "report",
        None,
    )


def _facts(name: str, r: dict) -> list[tuple]:
    """The rows that are not ratios: query counts, statuses, memory, equality."""
    if name == "refresh":
        ok = (
            r["ours"]["queries"] <= 5
            and r["ours"]["transactions"] == 1
            and not r["ours"]["autocommit"]
        )
        return [
            _row("refresh: one refresh", _queries(r["ours"]), _queries(r["stock"]), "<= 5 in 1", ok)
        ]
    if name == "race":
        ours, size = r["ours"], sum(r["ours"]["statuses"].values())
        ok = (
            ours["statuses"] == {"200": size}
            and ours["distinct_pairs"] == 1
            and ours["alive_status"] == 200
        )
        return [
            _row(
                f"race: {size} parallel refreshes of one token",
                _burst(ours),
                f"stock: {_burst(r['stock'])}",
                "all 200, 1 pair, alive",
                ok,
            )
        ]
    if name == "todos":
        return [_todo_queries(r)]
    if name == "instances":
        return [_instances(r)]
    if name == "memory":
        return [_memory(r)]
    if name == "events":
        return [_events(r)]
    if name == "receivers":
        return [_receivers(r, paced) for paced in (True, False)]
    if name == "admin":
        return [
            _row(f"admin: {name} changelist", _page(p), _page(r["small"][name]), "report", None)
            for name, p in r["large"].items()
        ]
    if name == "cleanup":
        ours, before, floor = r["ours"], r["before"], r["floor"]
        gone = sum(
            before[t] - ours["after"][t]
            for t in ("outstanding_tokens", "sessions", "security_events")
        )
        seeded = (
            f"{before['expired_tokens']:,} expired tokens, {before['expired_sessions']:,} "
            f"sessions, {before['old_events']:,} events past retention"
        )
        done = f"exit {ours['exit_code']}" + (
            ", stopped at the time cap" if ours["stopped"] else ""
        )
        failed = len(r["busy"]["failures"]) + len(r["floor_loop"]["failures"])
        differ = [t for t in TABLES if ours["after"][t] != floor["after"][t]]
        return [
            _row(
                f"cleanup of {seeded}",
                f"ours {gone / ours['seconds']:,.0f} rows/s, {ours['peak_rss_mb']:.0f} MB peak "
                f"RSS, {done}",
                f"refresh p99 during the floor {r['floor_loop']['p99'] * 1000:.2f} ms; "
                f"{failed} refreshes failed",
                "RSS < 100 MB",
                ours["peak_rss_mb"] < 100 and ours["exit_code"] == 0,
            ),
            _row(
                "cleanup: rows left, ours vs floor",
                ", ".join(f"{t} {ours['after'][t]:,}" for t in TABLES),
                "floor: " + (", ".join(f"{t} {floor['after'][t]:,}" for t in differ) or "the same"),
                "equal",
                not differ,
            ),
        ]
    return []


def _algorithm(runs: list[dict]) -> tuple:
    """What the chosen algorithm adds per request over HS256: the medians over runs of the
    differences, CPU per request against in-process verification.
    """
    a, b = ALGORITHM.lower(), HMAC_ALGORITHM.lower()

    def added(key: str, scale: float) -> float:
        return statistics.median((run[a][key] - run[b][key]) * scale for run in runs)

    return _row(
        f"{ALGORITHM} over {HMAC_ALGORITHM}, per request",
        f"CPU {added('cpu_app_ms', 1000):+.0f} µs app, {added('cpu_all_ms', 1000):+.0f} µs "
        "app + db",
        f"one verification in-process: {added('verify_ours_us', 1):+.0f} µs ours, "
        f"{added('verify_pyjwt_us', 1):+.0f} µs PyJWT alone",
        "report",
        None,
    )


def render(results: dict, info: dict, started: float, runs: int, methods: dict) -> str:
    """The whole markdown report; `methods` says how each measure was taken."""
    body = []
    for name, result in results.items():
        if isinstance(result, dict) and "error" in result:
            body.append((name, f"crashed: {result['error']}", "", "", "", "**error**"))
            continue
        body += [_ratio(result, *row[1:]) for row in RATIOS if row[0] == name]
        body += _facts(name, result[0])
        if name == "algorithm":
            body.append(_algorithm(result))
    sections = [
        "# Benchmarks",
        f"Written by `python -m bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{(time.perf_counter() - started) / 60:.1f} minutes, {runs} runs of the speed measures; "
        "never edited by hand. Ours, stock SimpleJWT and the floor run on the same gunicorn "
        "server, database, data and signing key. "
        "Ratios compare sides measured in alternating rounds; on a machine shared with other "
        "work they are indicative.",
        "## Machine",
        _table(("", ""), list(info.items())),
        "## Results",
        _table(HEADER, body),
    ]
    if "profile" in results:
        sections += [
            "## Profiles",
            "pyinstrument, in-process through the test client, milliseconds per request under "
            "the profiler; full profiles in `bench/results/profile-*.txt`.",
            _table(("request", "ms"), [(k, f"{v:.2f}") for k, v in results["profile"].items()]),
        ]
    how = [f"**{name}**: " + " ".join(methods[name].split()) for name in results if name in methods]
    return "\n\n".join([*sections, "## How each number is taken", *how])


def _table(header: tuple, rows: list) -> str:
    lines = [header, ("---",) * len(header), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)
