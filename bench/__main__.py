"""Benchmark our sign-in sessions against stock SimpleJWT and a bare floor, on PostgreSQL.

A complete run (`make bench`) writes BENCHMARKS.md; --quick and --only write under
bench/results/. Exits non-zero when a measure crashes, never for a missed target.
"""

import argparse
import dataclasses
import fcntl
import inspect
import json
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from bench import (
    measures_events,
    measures_memory,
    measures_ops,
    measures_receivers,
    measures_speed,
    report,
)
from bench.config import QUICK, SIDES, Run, Volumes
from bench.databases import ROOT, django_step, drop, manage, recreate, vacuum_analyze
from bench.servers import Pool, redis_server

RESULTS = ROOT / "bench" / "results"


class Measure(NamedTuple):
    """A measure: its function, whether --runs repeats it, whether it needs the large database."""

    function: Callable[[Run, Pool], dict]
    repeated: bool
    large: bool


# Those run once come after every run, and cleanup last: it deletes the large database's rows.
MEASURES = {
    "todos": Measure(measures_speed.todos, repeated=True, large=False),
    "refresh": Measure(measures_speed.refresh, repeated=True, large=False),
    "login": Measure(measures_speed.login, repeated=True, large=False),
    "algorithm": Measure(measures_speed.algorithm, repeated=True, large=False),
    "scale": Measure(measures_speed.scale, repeated=True, large=True),
    "race": Measure(measures_ops.race, repeated=False, large=False),
    "instances": Measure(measures_ops.instances, repeated=False, large=False),
    "memory": Measure(measures_memory.memory, repeated=False, large=False),
    # A ratio of two p50s on a busy machine: repeated, so the report shows its spread.
    "receivers": Measure(measures_receivers.receivers, repeated=True, large=False),
    "events": Measure(measures_events.events, repeated=False, large=False),
    "admin": Measure(measures_ops.admin, repeated=False, large=True),
    "cleanup": Measure(measures_ops.cleanup, repeated=False, large=True),
}


class Steps:
    """Prints each step with the seconds since the start."""

    def __init__(self):
        self.started = time.perf_counter()

    def __call__(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.1f}s] {text}", flush=True)


def set_up(run: Run, large: bool, step: Steps) -> None:
    """The small database with the bench user; with `large`, a copy with a million more tokens."""
    v = run.volumes
    step(f"creating database {v.main_db}")
    recreate(v.main_db)
    manage(run.env, v.main_db, "migrate", "--noinput", "-v0", log=run.log)
    prepared = django_step(
        run.env, v.main_db, "bench.inside", "prepare", run.log, password=run.password
    )
    run.password_hash = prepared["password_hash"]
    seed = ["seed_sessions", f"--tokens={v.small_tokens}", f"--sessions={v.small_sessions}"]
    manage(run.env, v.main_db, *seed, log=run.log)
    databases = [v.main_db]
    if large:
        step(
            f"seeding {v.large_db}: {v.large_tokens:,} expired tokens, {v.large_events:,} "
            f"events and {v.large_old_events:,} past retention"
        )
        recreate(v.large_db, template=v.main_db)
        seed = ["seed_sessions", f"--tokens={v.large_tokens}", f"--sessions={v.large_sessions}"]
        seed += [f"--events={v.large_events}", f"--old-events={v.large_old_events}"]
        step(manage(run.env, v.large_db, *seed, "--chain=2", "--expired", log=run.log).strip())
        databases.append(v.large_db)
    for name in databases:
        vacuum_analyze(name)


def measure(run: Run, pool: Pool, selected: list[str], step: Steps) -> dict:
    """Every selected measure: the repeated ones `runs` times, then the others once."""
    results: dict = {}
    runs = run.volumes.runs
    repeated = [name for name in selected if MEASURES[name].repeated]
    schedule = [(name, f" (run {i + 1} of {runs})") for i in range(runs) for name in repeated]
    schedule += [(name, "") for name in selected if name not in repeated]
    for name, when in schedule:
        if isinstance(results.get(name), dict):
            continue  # it crashed in an earlier run
        step(name + when)
        try:
            results.setdefault(name, []).append(MEASURES[name].function(run, pool))
        except Exception as exc:
            traceback.print_exc(file=run.log)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            step(f"{name} crashed: {results[name]['error']}")
    return results


def profile(run: Run) -> dict:
    """pyinstrument profiles of every side, in-process (bench.profiling)."""
    pairs = measures_speed.mint(run, run.volumes.main_db, ours=1, stock=1)
    tokens = {name: pairs[side.minted_by(name)][0] for name, side in SIDES.items()}
    return django_step(
        run.env, run.volumes.main_db, "bench.profiling", "profile", run.log, tokens=tokens
    )


def main() -> int:
    """Parse the options, run, write the report; non-zero if a measure crashed."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small volumes, one run (CI)")
    parser.add_argument("--only", default=",".join(MEASURES), help="comma-separated measures")
    parser.add_argument("--runs", type=int, help="runs of the speed measures (default 3, quick 1)")
    parser.add_argument("--profile", action="store_true", help="also profile with pyinstrument")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    args = parser.parse_args()
    selected = [name for name in MEASURES if name in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(MEASURES)
    if unknown or not selected:
        parser.error(f"--only takes some of: {', '.join(MEASURES)}")
    volumes = QUICK if args.quick else Volumes()
    if args.runs:
        volumes = dataclasses.replace(volumes, runs=max(1, args.runs))
    complete = not args.quick and len(selected) == len(MEASURES)
    output = ROOT / "BENCHMARKS.md" if complete else RESULTS / "BENCHMARKS.partial.md"
    RESULTS.mkdir(parents=True, exist_ok=True)
    # One run at a time on this machine, whatever the checkout: runs share database
    # names, and each would skew the other's CPU.
    lock = open(Path(tempfile.gettempdir()) / "python-bench.lock", "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        parser.exit(2, "python -m bench: another run is in progress on this machine.\n")
    # A SIGTERM (a timeout, a stop from CI) unwinds like an exception: every server stops.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    step = Steps()
    with open(RESULTS / "bench.log", "w") as log:
        run = Run(volumes=volumes, log=log)
        info = report.machine()
        with redis_server(log) as redis:
            run.env["REDIS_URL"] = redis.url
            # Redis's CPU counts with the database's: ours reads it on every request.
            pool = Pool(run.env, log, stores=[redis.pid])
            try:
                set_up(run, any(MEASURES[name].large for name in selected), step)
                results = measure(run, pool, selected, step)
                profiled = {}
                if args.profile:
                    step("profiling every side")
                    profiled = profile(run)
            finally:
                pool.close()
                if not args.keep:
                    for name in (volumes.large_db, volumes.main_db):
                        drop(name)
    # The profiles' timings go with the results, not into the report: they are taken
    # under a profiler, in-process, and are no measure with a target.
    saved = {**results, "profile": profiled} if profiled else results
    (RESULTS / "results.json").write_text(json.dumps(saved, indent=2))
    methods = {name: inspect.getdoc(measure.function) for name, measure in MEASURES.items()}
    output.write_text(report.render(results, info, step.started, volumes.runs, methods) + "\n")
    print(output.read_text())
    step(f"wrote {output.relative_to(ROOT)}")
    return 1 if any(isinstance(r, dict) and "error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
