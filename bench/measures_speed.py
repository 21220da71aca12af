"""Speed, ours against a baseline in alternating rounds: requests, refresh, login, scale."""

import statistics
import time

from django.contrib.auth.hashers import PBKDF2PasswordHasher

from bench.config import LARGE_DB, MAIN_DB, Run
from bench.databases import inside
from bench.inside import BENCH_USERNAME
from bench.load import request, wrk_load
from bench.servers import Server, cpu_used
from bench.stats import alternate, medians

REFRESH = {
    # side: (path, request field, response field)
    "ours": ("/auth/refresh", "refresh_token", "refresh_token"),
    "stock": ("/stock/refresh", "refresh", "refresh"),
}


def todos(run: Run, server: Server) -> dict:
    """GET /todos under wrk: our SessionJWTAuthentication against stock JWTAuthentication.

    Besides wrk's throughput and latency, each round records the CPU time the server
    (gunicorn and its PostgreSQL backends) spent per request: on a machine shared with
    other work that is steadier than wall-clock throughput.
    """
    profile = inside(run.env, MAIN_DB, "profile_todos", log=run.log, requests=200)
    pairs = inside(run.env, MAIN_DB, "mint", log=run.log, ours=1, stock=1)
    paths = {"ours": "/todos", "stock": "/stock/todos"}
    v = run.volumes

    def side(name: str, seconds: int):
        token = pairs[name][0]["access"]

        def one_round() -> dict:
            before = server.cpu_seconds()
            result = wrk_load(
                run.wrk,
                server.port,
                paths[name],
                token,
                seconds=seconds,
                connections=v.wrk_connections,
            )
            cpu = cpu_used(before, server.cpu_seconds())
            return {**result, "cpu_ms": cpu * 1000 / max(result["requests"], 1)}

        return one_round

    for name in paths:
        side(name, 2)()  # warm-up: connections, worker caches
    rounds = alternate(v.wrk_rounds, {name: side(name, v.wrk_seconds) for name in paths})
    summary = {
        name: {
            **medians(r),
            "errors": sum(x["errors"] for x in r),
            "rps_rounds": [x["rps"] for x in r],
        }
        for name, r in rounds.items()
    }
    return {**summary, "profile": profile}


def _refresh_chain(port: int, side: str, token: str, count: int) -> tuple[str, list[float]]:
    """`count` sequential refreshes, each with the token the previous one returned."""
    path, field, answer = REFRESH[side]
    latencies = []
    for _ in range(count):
        response = request(port, "POST", path, body={field: token})
        if response.status != 200:
            raise RuntimeError(f"{side} refresh answered {response.status}: {response.body}")
        token = response.body[answer]
        latencies.append(response.seconds)
    return token, latencies


class Chain:
    """A refresh-token chain that keeps rotating across rounds."""

    def __init__(self, port: int, side: str, token: str, count: int):
        self.port, self.side, self.token, self.count = port, side, token, count

    def __call__(self) -> dict:
        self.token, latencies = _refresh_chain(self.port, self.side, self.token, self.count)
        return {"p50": statistics.median(latencies)}


def refresh(run: Run, port: int) -> dict:
    """POST refresh: queries and transactions in-process, p50 over HTTP; ours against stock."""
    queries = inside(run.env, MAIN_DB, "refresh_queries", log=run.log)
    profile = inside(run.env, MAIN_DB, "profile_refresh", log=run.log, requests=150)
    pairs = inside(run.env, MAIN_DB, "mint", log=run.log, ours=1, stock=1)
    v = run.volumes
    chains = {
        side: Chain(port, side, pairs[side][0]["refresh"], v.refreshes_per_round)
        for side in REFRESH
    }
    for chain in chains.values():
        chain.token = _refresh_chain(port, chain.side, chain.token, 3)[0]  # warm-up
    rounds = alternate(v.rounds, chains)
    return {
        **{side: {**queries[side], **medians(rounds[side])} for side in REFRESH},
        "profile": profile,
    }


def login(run: Run, port: int, password_hash: str) -> dict:
    """p50 of POST /auth/login against p50 of one verify by the hasher the user's hash names."""
    hasher = PBKDF2PasswordHasher()
    algorithm, iterations, *_ = password_hash.split("$")
    if algorithm != hasher.algorithm:
        raise RuntimeError(f"expected Django's default PBKDF2 hash, found {algorithm}")
    n = run.volumes.logins_per_round

    def http_login() -> dict:
        times = []
        for _ in range(n):
            body = {"username": BENCH_USERNAME, "password": run.password}
            response = request(port, "POST", "/auth/login", body=body)
            if response.status != 200:
                raise RuntimeError(f"login answered {response.status}: {response.body}")
            times.append(response.seconds)
        return {"p50": statistics.median(times)}

    def verify() -> dict:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            if not hasher.verify(run.password, password_hash):
                raise RuntimeError("the bench password does not verify")
            times.append(time.perf_counter() - started)
        return {"p50": statistics.median(times)}

    http_login(), verify()  # warm-up
    rounds = alternate(run.volumes.rounds, {"login": http_login, "verify": verify})
    return {
        "iterations": int(iterations),
        "algorithm": algorithm,
        **{side: medians(r) for side, r in rounds.items()},
    }


def scale(run: Run, small_port: int, large_port: int) -> dict:
    """Refresh and authenticated GET p50, small database against the million-token one."""
    v = run.volumes
    sides = {}
    for name, port, database in (("small", small_port, MAIN_DB), ("large", large_port, LARGE_DB)):
        pair = inside(run.env, database, "mint", log=run.log, ours=1)["ours"][0]
        sides[name] = _ScaleSide(port, pair, v.scale_refreshes, v.scale_requests)
    for side in sides.values():
        side()  # warm-up
    rounds = alternate(v.rounds, sides)
    return {name: medians(r) for name, r in rounds.items()}


class _ScaleSide:
    """One database's round: a run of refreshes, then a run of authenticated GETs."""

    def __init__(self, port: int, pair: dict, refreshes: int, requests: int):
        self.port, self.requests = port, requests
        self.chain = Chain(port, "ours", pair["refresh"], refreshes)
        self.access = pair["access"]

    def __call__(self) -> dict:
        refresh_p50 = self.chain()["p50"]
        latencies = []
        for _ in range(self.requests):
            response = request(self.port, "GET", "/todos", token=self.access)
            if response.status != 200:
                raise RuntimeError(f"GET /todos answered {response.status}: {response.body}")
            latencies.append(response.seconds)
        return {"refresh_p50": refresh_p50, "get_p50": statistics.median(latencies)}
