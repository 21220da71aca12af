"""HTTP traffic to 127.0.0.1: timed single requests, and closed-loop load with wrk."""

import http.client
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Response:
    """One answer: status, raw and decoded JSON body (or None), and wall time in seconds."""

    status: int
    raw: bytes
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
    return Response(response.status, raw, decoded, seconds)


def require_wrk() -> str:
    """wrk's path; `.ci/run` installs Debian's package where it is missing."""
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    return path


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


def wrk(port: int, path: str, token: str, seconds: int, connections: int) -> dict:
    """Closed-loop load on one path: {"rps", "p50", "p99", "requests", "errors"} (seconds)."""
    out = subprocess.run(
        [
            require_wrk(),
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
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if set(latency) != {"50", "99"}:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    # Answers that were not 2xx, and connections that failed (connect, read, write, timeout).
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    failed = int(non_2xx.group(1)) if non_2xx else 0
    failed += sum(map(int, re.findall(r"\d+", sockets.group(1)))) if sockets else 0
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _seconds(latency["50"]),
        "p99": _seconds(latency["99"]),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": failed,
    }
