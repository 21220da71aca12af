"""Memory: what one gunicorn worker holds while it serves the largest todo list, many at once."""

import contextlib
import statistics
import threading

from bench.config import SIDES, Run
from bench.databases import django_step
from bench.load import request
from bench.measures_speed import mint
from bench.servers import Pool, gunicorn, process_memory_mb


def _together(port: int, token: str, count: int) -> list:
    """`count` GET /todos released by one barrier, each on its own connection."""
    barrier = threading.Barrier(count)
    answers = [None] * count

    def one(index: int) -> None:
        barrier.wait(timeout=60)
        # A failed connection stays None: counted as status 0.
        with contextlib.suppress(OSError):
            answers[index] = request(port, "GET", SIDES["ours"].todos, token=token)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return answers


def memory(run: Run, pool: Pool) -> dict:
    """The largest list a user may hold is seeded by bulk_create (`TODO_LIMIT_PER_USER`
    todos in the full run, fewer in --quick, every title and description at its maximum
    length in U+2028, which the JSON carries as six bytes); `concurrent_gets` GET /todos of
    it (8) are released together by one barrier against a fresh gunicorn worker with a
    thread for each. Reported: the worker's resident memory (VmRSS) and its peak (VmHWM,
    /proc) after one small GET /todos as a warm-up and after the burst, the statuses, how
    many bodies parse as the whole list, the body size, and the slowest answer.
    """
    v = run.volumes
    seeded = django_step(
        run.env, v.main_db, "bench.inside", "largest_list", run.log, count=v.largest_list
    )
    tokens = mint(run, v.main_db, ours=1)["ours"][0]
    largest = django_step(
        run.env, v.main_db, "bench.inside", "mint", run.log, ours=1, username=seeded["username"]
    )["ours"][0]
    with gunicorn(run.env, v.main_db, run.log, threads=v.concurrent_gets) as server:
        [worker] = server.workers()
        warm = request(server.port, "GET", SIDES["ours"].todos, token=tokens["access"])
        if warm.status != 200:
            raise RuntimeError(f"the warm-up GET /todos answered {warm.status}")
        before = process_memory_mb(worker)
        answers = _together(server.port, largest["access"], v.concurrent_gets)
        after = process_memory_mb(worker)
    statuses: dict[str, int] = {}
    for answer in answers:
        key = str(answer.status if answer else 0)
        statuses[key] = statuses.get(key, 0) + 1
    served = [answer for answer in answers if answer and answer.status == 200]
    bodies = [len(answer.raw) for answer in served]
    return {
        **seeded,
        "concurrent": v.concurrent_gets,
        "statuses": statuses,
        # Whole lists: a JSON array of every todo (a cut stream would not parse).
        "complete": sum(
            isinstance(answer.body, list) and len(answer.body) == seeded["todos"]
            for answer in served
        ),
        "body_bytes": max(bodies, default=0),
        "slowest_seconds": max((a.seconds for a in answers if a), default=0.0),
        "median_seconds": statistics.median([a.seconds for a in answers if a] or [0.0]),
        "before": before,
        "after": after,
    }
