"""App servers for tests across processes: gunicorn on the test database, and a TCP proxy.

Each starts on a free loopback port, is bounded in time, and is stopped by its fixture.
"""

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings as django_settings
from django.db import connection

BASE_DIR = Path(django_settings.BASE_DIR)
START_TIMEOUT = 30
REQUEST_TIMEOUT = 15


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pytest_database_url(port: int | None = None, host: str | None = None) -> str:
    """The pytest-created test database as a DATABASE_URL, optionally through another port
    (PostgreSQL); on SQLite, its file."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    host = host or db["HOST"] or "127.0.0.1"
    return f"postgres://{credentials}@{host}:{port or db['PORT']}/{db['NAME']}"


class TcpProxy:
    """Forward 127.0.0.1:<port> to a server; cut() drops every connection until restore()."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.up.is_set():
                # Down: the connection opens and closes at once, as to a dead server.
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *sockets: socket.socket) -> None:
        with self.lock:
            for sock in sockets:
                self.sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self) -> None:
        """Refuse new connections and break the open ones, mid-query if need be."""
        self.up.clear()
        with self.lock:
            open_sockets = list(self.sockets)
        self._drop(*open_sockets)

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.listener.close()
        self.cut()


class AppProcess:
    """One of the project's processes on the test database, logging to a file; stop() ends it.

    `environment` adds to (or overrides) the test settings' variables, e.g. REDIS_URL.
    """

    def __init__(self, argv: list[str], database_url: str, log: Path, **environment) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url,
            **environment,
        }
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", *argv],
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Server(AppProcess):
    """gunicorn serving the app on 127.0.0.1, as deployed: `gunicorn project.wsgi`."""

    def __init__(
        self, database_url: str, log: Path, *, workers: int = 2, port: int = 0, **environment
    ) -> None:
        self.port = port or free_port()
        argv = [
            *("gunicorn", "project.wsgi"),
            *("--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)),
            *("--timeout", "30"),
        ]
        super().__init__(argv, database_url, log, **{"REDIS_URL": "", **environment})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body=None, token: str | None = None):
        """One request; returns (status, content type, parsed JSON or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        headers = {"Content-Type": "application/json", "Host": "localhost"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        content_type = response.getheader("Content-Type", "")
        payload = json.loads(text) if content_type == "application/json" else text
        return response.status, content_type, payload

    def wait_until_healthy(self, timeout: float) -> float:
        """Poll /healthz until it answers 200; returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            assert self.process.poll() is None, "gunicorn exited"
            try:
                if self.call("GET", "/healthz")[0] == 200:
                    return time.monotonic() - start
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not healthy after {timeout}s")


class EventWorker(AppProcess):
    """The Celery worker with its beat, as `make run` starts it: it pushes session events.

    REDIS_URL, in `environment`, is its broker.
    """

    def __init__(self, database_url: str, log: Path, **environment) -> None:
        argv = [
            *("celery", "-A", "project", "worker", "--beat"),
            *("--schedule", str(log.with_suffix(".schedule"))),
            *("--pool", "threads", "--concurrency", "4", "--loglevel", "info"),
            *("--without-mingle", "--without-gossip", "--without-heartbeat"),
        ]
        super().__init__(argv, database_url, log, **environment)

    def wait_until_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the worker logs that it is ready for tasks."""
        text = Path(self.log.name)
        deadline = time.monotonic() + timeout
        while "ready." not in text.read_text():
            assert self.process.poll() is None, f"the worker exited: {text.read_text()}"
            assert time.monotonic() < deadline, f"the worker not ready after {timeout}s"
            time.sleep(0.05)
