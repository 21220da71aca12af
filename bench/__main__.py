"""Run the whole benchmark: set up databases, start servers, measure, write BENCHMARKS.md."""

import argparse
import json
import sys
import time
from pathlib import Path

from bench import measures_ops, measures_speed, report
from bench.config import LARGE_DB, MAIN_DB, QUICK, Run, Volumes
from bench.databases import ROOT, drop, inside, manage, recreate, vacuum_analyze
from bench.load import ensure_wrk
from bench.servers import gunicorn

RESULTS = ROOT / "bench" / "results"


class Steps:
    """Prints each step with the time elapsed since the start."""

    def __init__(self):
        self.started = time.perf_counter()

    def __call__(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.1f}s] {text}", flush=True)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def set_up(run: Run, step: Steps) -> dict:
    """The small database with the bench user, and a copy of it with a million more tokens."""
    v = run.volumes
    step(f"creating database {MAIN_DB}")
    recreate(MAIN_DB)
    manage(run.env, MAIN_DB, "migrate", "--noinput", "-v0", log=run.log)
    user = inside(run.env, MAIN_DB, "prepare", log=run.log, password=run.password)
    manage(
        run.env,
        MAIN_DB,
        "seed_sessions",
        f"--tokens={v.small_tokens}",
        f"--sessions={v.small_sessions}",
        log=run.log,
    )
    step(f"seeding {LARGE_DB}: {v.large_tokens:,} tokens, {v.large_sessions:,} sessions")
    recreate(LARGE_DB, template=MAIN_DB)
    out = manage(
        run.env,
        LARGE_DB,
        "seed_sessions",
        f"--tokens={v.large_tokens}",
        f"--sessions={v.large_sessions}",
        "--expired",
        log=run.log,
    )
    step(out.strip())
    for name in (MAIN_DB, LARGE_DB):
        vacuum_analyze(name)
    return user


def measure(run: Run, step: Steps, results: dict) -> None:
    """Every measure, each server stopped as soon as its measures end."""
    user = set_up(run, step)
    with gunicorn(run.env, MAIN_DB, run.log) as server:
        port = server.port
        step("GET /todos: ours vs stock JWTAuthentication (wrk)")
        results["todos"] = measures_speed.todos(run, server)
        step("refresh: ours vs stock TokenRefreshView")
        results["refresh"] = measures_speed.refresh(run, port)
        step("login vs one password-hash verify")
        results["login"] = measures_speed.login(run, port, user["password_hash"])
        step("race: parallel refreshes of one token")
        results["race"] = measures_ops.race(run, port)
        with gunicorn(run.env, MAIN_DB, run.log) as server_b:
            step("two instances: logout on A, call B")
            results["two_instances"] = measures_ops.two_instances(run, port, server_b.port)
        with gunicorn(run.env, LARGE_DB, run.log) as large:
            step("scale: 1k vs 1M outstanding tokens")
            results["scale"] = measures_speed.scale(run, port, large.port)
    step("admin changelists")
    results["admin"] = measures_ops.admin(run)
    step("cleanup_tokens on the expired million")
    timeout = max(60, run.volumes.budget_seconds - step.elapsed)
    results["cleanup"] = measures_ops.cleanup(run, timeout)


def main() -> int:
    """Run the bench; writes BENCHMARKS.md (or --output) and bench/results/."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small volumes, for a smoke run")
    parser.add_argument("--output", type=Path, default=None, help="default: BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    args = parser.parse_args()
    volumes = QUICK if args.quick else Volumes()
    output = args.output or (
        RESULTS / "BENCHMARKS.quick.md" if args.quick else ROOT / "BENCHMARKS.md"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    step = Steps()
    results: dict = {}
    with open(RESULTS / "bench.log", "w") as log:
        run = Run(volumes=volumes, log=log, wrk=ensure_wrk(log))
        info = report.machine(run)
        try:
            measure(run, step, results)
        finally:
            (RESULTS / "results.json").write_text(json.dumps(results, indent=2, default=str))
            if not args.keep:
                for name in (LARGE_DB, MAIN_DB):
                    drop(name)
    markdown = report.render(results, info, step.elapsed, volumes)
    output.write_text(markdown + "\n")
    print(markdown)
    step(f"done; wrote {output.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
