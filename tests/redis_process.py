"""A redis-server of the tests' own, on a free loopback port: never the machine's shared one.

Without persistence, a stop loses everything, as a restart of a cache does; with
`persist=True` it saves to a file on stop and loads it on start, as a Redis with an RDB
snapshot does.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError


class RedisProcess:
    """start() and stop() at will; the port stays the same, so clients reconnect to it."""

    def __init__(self, *, persist: bool = False) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            reason = "redis-server is not installed (apt-get install -y redis-server)"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.persist = persist
        self.directory = tempfile.mkdtemp(prefix="test-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisProcess":
        saving = (
            ["--save", "3600 1", "--dbfilename", "dump.rdb"] if self.persist else ["--save", ""]
        )
        self.process = subprocess.Popen(
            [
                *(self.binary, "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--dir", self.directory, "--appendonly", "no", *saving),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    return self
                except RedisConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"redis-server did not start on {self.url}")
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: with persistence, Redis saves its snapshot before it exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: a crash. With persistence, the next start loads the last snapshot."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
