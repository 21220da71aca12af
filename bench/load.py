"""HTTP traffic to 127.0.0.1: timed single requests, sequential runs, and wrk load."""

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass

from bench.stats import percentile


@dataclass
class Response:
    """One answer: status, decoded JSON body (or None) and wall time in seconds."""

    status: int
    body: object
    seconds: float


def request(port: int, method: str, path: str, *, body=None, token=None) -> Response:
    """One request on a fresh connection, timed from send to the last byte of the answer."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = None
    return Response(response.status, decoded, seconds)


def ensure_wrk(log) -> str | None:
    """wrk's path, installing Debian's package when missing and allowed; None: use Python."""
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if shutil.which("apt-get") and os.geteuid() == 0:
        for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            try:
                subprocess.run(args, stdout=log, stderr=log, timeout=300, check=True)
            except (OSError, subprocess.SubprocessError):
                return None
    return shutil.which("wrk")


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


def wrk_load(wrk: str | None, port: int, path: str, token: str, *, seconds: int, connections: int):
    """Closed-loop load on one path: {"rps", "p50", "p99", "requests", "errors"} (seconds)."""
    if wrk is None:
        return python_load(port, path, token, seconds=seconds, connections=connections)
    result = subprocess.run(
        [
            wrk,
            f"--threads={min(2, connections)}",
            f"--connections={connections}",
            f"--duration={seconds}s",
            "--latency",
            f"--header=Authorization: Bearer {token}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    out = result.stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if set(latency) != {"50", "99"}:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _seconds(latency["50"]),
        "p99": _seconds(latency["99"]),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def python_load(port: int, path: str, token: str, *, seconds: int, connections: int) -> dict:
    """wrk's measure in Python threads with keep-alive connections (a slower client)."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, bad = [], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append(time.perf_counter() - started)
            bad += response.status >= 300
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 99),
        "requests": len(latencies),
        "errors": errors[0],
        "socket_errors": "",
    }
