"""Gunicorn servers on 127.0.0.1 that always stop, even when a measure fails."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bench.databases import ROOT, backend_pids, django_env

# One worker: with two, wrk's keep-alive connections split unevenly between them from
# round to round, and throughput and CPU per request swung between two modes. Threads
# let PostgreSQL work on the other core while Python waits for it.
WORKERS = 1
THREADS = 4


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime: fields 14 and 15 of proc(5), counted after the ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_memory_mb(pid: int) -> dict:
    """A process's resident memory now (VmRSS) and at its peak so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    # Both are given in kB.
    return {key: int(fields[name].split()[0]) / 1024 for key, name in _MEMORY.items()}


_MEMORY = {"rss_mb": "VmRSS", "peak_mb": "VmHWM"}


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


@dataclass
class Server:
    """A running gunicorn: its port, its master's pid and its database."""

    port: int
    pid: int
    database: str
    # Stores beside the database whose CPU counts with it: the run's redis-server.
    stores: list[int] = field(default_factory=list)

    def workers(self) -> list[int]:
        """gunicorn's worker processes."""
        return _children(self.pid)

    def pids(self) -> tuple[list[int], list[int]]:
        """The processes serving it now: gunicorn's master and workers; PostgreSQL's
        backends and the run's redis-server."""
        return [self.pid, *_children(self.pid)], [*backend_pids(self.database), *self.stores]

    def cpu_during(self, work) -> tuple[object, float, float]:
        """work()'s result, and the CPU seconds the app's and the database's processes spent."""
        app, db = self.pids()
        before = {pid: process_cpu_seconds(pid) for pid in app + db}
        result = work()
        app, db = self.pids()
        spent = [
            sum(process_cpu_seconds(p) - before.get(p, 0.0) for p in pids) for pids in (app, db)
        ]
        return result, *spent


@dataclass
class RedisServer:
    """The run's own redis-server: its URL and pid."""

    url: str
    pid: int


@contextmanager
def redis_server(log) -> Iterator[RedisServer]:
    """A redis-server of the run's own on a free loopback port, as production runs it for
    the revocation list (`noeviction`) and without persistence; stopped at the end.

    Never the machine's shared Redis: a run flushes nothing and measures nothing else's load.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [
            *(binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", directory),
            *("--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"),
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_redis(process, url)
        yield RedisServer(url=url, pid=process.pid)
    finally:
        stop(process)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_redis(process: subprocess.Popen, url: str, timeout: float = 10) -> None:
    client = Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except RedisConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on {url}") from None
                time.sleep(0.05)
    finally:
        client.close()


@contextmanager
def gunicorn(
    env: dict,
    database: str,
    log,
    *,
    workers: int = WORKERS,
    threads: int = THREADS,
    stores: list[int] | None = None,
    port: int | None = None,
):
    """Serve the project with the bench settings on database `database`; yields a Server.

    `port`: where to listen, for a server that must know its own URL before it starts.
    """
    port = port or free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "project.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=gthread",
            f"--threads={threads}",
            "--graceful-timeout=5",
            # Several servers run at once; none needs gunicorn's shared control socket.
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=django_env(env, database),
        stdout=log,
        stderr=log,
        # Its own process group, so stopping it stops its workers and nothing else.
        start_new_session=True,
    )
    try:
        _wait_healthy(process, port)
        yield Server(port=port, pid=process.pid, database=database, stores=stores or [])
    finally:
        stop(process)


def _wait_healthy(process: subprocess.Popen, port: int, timeout: float = 30) -> None:
    """Wait until /healthz answers 200 (database reachable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see the bench log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} not healthy after {timeout}s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Pool:
    """Servers started on first use and kept until closed, so measures share them."""

    def __init__(self, env: dict, log, stores: list[int] | None = None):
        self.env, self.log, self.stores = env, log, stores or []
        self.stack = ExitStack()
        self.servers: dict[tuple[str, str], Server] = {}

    def get(
        self, database: str, name: str = "a", port: int | None = None, **environment: str
    ) -> Server:
        """The server `name` on `database`, started now if it isn't running.

        `environment` adds to the run's variables for that server alone (when it starts),
        and `port` is where it then listens (default: a free one).
        """
        if (database, name) not in self.servers:
            env = {**self.env, **environment}
            server = self.stack.enter_context(
                gunicorn(env, database, self.log, stores=self.stores, port=port)
            )
            self.servers[database, name] = server
        return self.servers[database, name]

    def close(self) -> None:
        """Stop every server."""
        self.stack.close()
        self.servers.clear()
