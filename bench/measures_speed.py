"""Speed, each side against its baseline in alternating rounds: todos, refresh, login, the
signing algorithm, scale.
"""

import statistics
import time
from collections.abc import Callable
from functools import partial

import jwt
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from bench.config import (
    ALGORITHM,
    BENCH_USERNAME,
    HMAC_ALGORITHM,
    REFRESHING,
    SIDES,
    Run,
    Side,
    Volumes,
)
from bench.databases import django_step
from bench.load import Response, request, wrk
from bench.servers import Pool, Server


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def alternate(rounds: int, sides: dict[str, Callable[[], dict]]) -> dict[str, list[dict]]:
    """Run the sides forward then backward each round (A B B A), so drift falls on all alike."""
    results: dict[str, list[dict]] = {name: [] for name in sides}
    order = [*sides, *reversed(sides)]
    for _ in range(rounds):
        for name in order:
            results[name].append(sides[name]())
    return results


def medians(samples: list[dict]) -> dict:
    """The median of each numeric key over samples."""
    return {
        key: statistics.median(sample[key] for sample in samples)
        for key, value in samples[0].items()
        if isinstance(value, int | float)
    }


def mint(run: Run, database: str, ours: int = 0, stock: int = 0, env: dict | None = None) -> dict:
    """Fresh token pairs on `database` (see bench.inside.mint), in `env` (default the run's)."""
    pairs = django_step(
        env or run.env, database, "bench.inside", "mint", run.log, ours=ours, stock=stock
    )
    algorithm = (env or run.env)["JWT_ALGORITHM"]
    for pair in (pair for side in pairs.values() for pair in side):
        # Every side is on the algorithm the report names, or the measure stops.
        signed = {jwt.get_unverified_header(token)["alg"] for token in pair.values()}
        if signed != {algorithm}:
            raise RuntimeError(f"tokens signed with {signed}, not {algorithm}")
    return pairs


def todos(run: Run, pool: Pool) -> dict:
    """`GET /todos` of a user with 20 todos under wrk, a connection per server thread: ours
    (`/todos`, each worker's feed of ended sessions, fed by the run's own Redis), stock
    (`/stock/todos`, the same `TodoViewSet` behind SimpleJWT's `JWTAuthentication`),
    stateless (`/stateless/todos`, the same view behind SimpleJWT's
    `JWTStatelessUserAuthentication`, filtered by the token's user id: no query, no
    revocation) and the floor (`/floor/todos`, bench/floor.py: PyJWT, the same revocation
    check as ours, raw SQL, no DRF), whose bodies are first checked byte for byte against
    ours. Each round runs the sides forward then backward
    (A B C D D C B A). CPU per request: user + system CPU of gunicorn's processes (app),
    plus that of PostgreSQL's backends and the run's redis-server (app + db), over the
    requests wrk completed; per side the median over rounds. Throughput on this shared VM
    swings from round to round: judge by CPU. Queries per request are counted in-process by
    `tests.querycount.QueryCounter`, on the second request of a token (the steady state).
    """
    v = run.volumes
    server = pool.get(v.main_db)
    pairs = mint(run, v.main_db, ours=1, stock=1)
    tokens = {name: pairs[side.minted_by(name)][0]["access"] for name, side in SIDES.items()}
    bodies = {
        name: request(server.port, "GET", SIDES[name].todos, token=tokens[name]) for name in SIDES
    }
    for name, response in bodies.items():
        if response.status != 200 or response.raw != bodies["ours"].raw:
            raise RuntimeError(f"{name} answered {response.status}, not the body of /todos")

    queries = django_step(run.env, v.main_db, "bench.inside", "todos_queries", run.log)
    loads = {
        name: partial(_cpu_round, server, SIDES[name].todos, tokens[name], v.wrk_connections)
        for name in SIDES
    }
    results = _cpu_rounds(v, loads)
    return {name: {**results[name], **queries[name]} for name in SIDES}


def _cpu_round(server: Server, path: str, token: str, connections: int, seconds: int) -> dict:
    """One wrk round on `path`: wrk's numbers, and the CPU per request of app and database."""
    load = partial(wrk, server.port, path, token, seconds, connections)
    result, app, db = server.cpu_during(load)
    requests = max(result["requests"], 1)
    return {
        **result,
        "cpu_app_ms": app * 1000 / requests,
        "cpu_all_ms": (app + db) * 1000 / requests,
    }


def _cpu_rounds(v: Volumes, loads: dict[str, Callable[[int], dict]]) -> dict:
    """A warm-up of each side, then `wrk_rounds` alternating rounds; per side the medians."""
    for load in loads.values():
        load(1)  # warm-up: connections, worker caches
    rounds = alternate(
        v.wrk_rounds, {name: partial(load, v.wrk_seconds) for name, load in loads.items()}
    )
    return {
        name: {**medians(samples), "errors": sum(s["errors"] for s in samples)}
        for name, samples in rounds.items()
    }


def _seconds(response: Response) -> float:
    """The wall time of a 200 answer; anything else stops the measure."""
    if response.status != 200:
        raise RuntimeError(f"answered {response.status}: {response.body}")
    return response.seconds


def _p50(count: int, once: Callable[[], float]) -> dict:
    """The median of `count` timed calls."""
    return {"p50": statistics.median(once() for _ in range(count))}


class Chain:
    """A refresh-token chain that keeps rotating: each refresh sends the last one's token."""

    def __init__(self, port: int, side: Side, token: str, count: int = 1):
        self.port, self.side, self.token, self.count = port, side, token, count

    def step(self) -> float:
        """One refresh; its wall time in seconds."""
        field = self.side.refresh_field
        response = request(self.port, "POST", self.side.refresh, body={field: self.token})
        seconds = _seconds(response)
        self.token = response.body[field]
        return seconds

    def __call__(self) -> dict:
        return _p50(self.count, self.step)


def refresh(run: Run, pool: Pool) -> dict:
    """Queries, writes and transactions of one refresh, ours against stock SimpleJWT's
    `TokenRefreshView` (rotation + blacklist), counted by `tests.querycount.QueryCounter`
    through the URLconf; p50 of sequential chains of refreshes over HTTP, each sending the
    token the one before returned, a fresh connection each, sides alternating.
    """
    v = run.volumes
    queries = django_step(run.env, v.main_db, "bench.inside", "refresh_queries", run.log)
    port = pool.get(v.main_db).port
    pairs = mint(run, v.main_db, ours=1, stock=1)
    chains = {
        name: Chain(port, SIDES[name], pairs[name][0]["refresh"], v.refreshes_per_round)
        for name in REFRESHING
    }
    for chain in chains.values():
        chain.step()  # warm-up
    rounds = alternate(v.rounds, chains)
    return {name: {**queries[name], **medians(rounds[name])} for name in REFRESHING}


def login(run: Run, pool: Pool) -> dict:
    """p50 of `POST /auth/login` over HTTP against two floors of the same password check:
    `POST /floor/verify` on the same server (bench/floor.py: one query for the user's hash,
    Django's `check_password`, nothing else), and one `PBKDF2PasswordHasher.verify` of the
    hash in the bench's own process (Django's default hasher and iterations). The three
    alternate request by request (A B C C B A), `logins_per_round` times per round.
    """
    hasher = PBKDF2PasswordHasher()
    algorithm, iterations, *_ = run.password_hash.split("$")
    if algorithm != hasher.algorithm:
        raise RuntimeError(f"expected Django's default PBKDF2 hash, found {algorithm}")
    port = pool.get(run.volumes.main_db).port
    body = {"username": BENCH_USERNAME, "password": run.password}

    def verify() -> float:
        started = time.perf_counter()
        if not hasher.verify(run.password, run.password_hash):
            raise RuntimeError("the bench password does not verify")
        return time.perf_counter() - started

    sides = {
        "login": lambda: _seconds(request(port, "POST", "/auth/login", body=body)),
        "check": lambda: _seconds(request(port, "POST", "/floor/verify", body=body)),
        "verify": verify,
    }
    for once in sides.values():
        once()  # warm-up
    samples = alternate(
        run.volumes.rounds * run.volumes.logins_per_round,
        {name: lambda once=once: {"p50": once()} for name, once in sides.items()},
    )
    return {
        "algorithm": algorithm,
        "iterations": int(iterations),
        **{name: medians(values) for name, values in samples.items()},
    }


def scale(run: Run, pool: Pool) -> dict:
    """Refresh and authenticated `GET /todos` p50 against a server on the small database
    (about 1,000 outstanding tokens) and one on the large copy (a million expired tokens
    more), alternating.
    """
    v = run.volumes
    sides = {}
    for name, database in (("small", v.main_db), ("large", v.large_db)):
        port = pool.get(database).port
        pair = mint(run, database, ours=1)["ours"][0]
        chain = Chain(port, SIDES["ours"], pair["refresh"], v.scale_refreshes)
        get = partial(request, port, "GET", SIDES["ours"].todos, token=pair["access"])
        sides[name] = partial(_scale_round, chain, get, v.scale_requests)
    for side in sides.values():
        side()  # warm-up
    rounds = alternate(v.rounds, sides)
    return {name: medians(samples) for name, samples in rounds.items()}


def _scale_round(chain: Chain, get: Callable[[], Response], requests: int) -> dict:
    """One database's round: a run of refreshes, then a run of authenticated GETs."""
    get_p50 = _p50(requests, lambda: _seconds(get()))["p50"]
    return {"refresh_p50": chain()["p50"], "get_p50": get_p50}


def algorithm(run: Run, pool: Pool) -> dict:
    """What verifying RS256 costs per request against HS256: `GET /todos` of the bench user
    under wrk on two gunicorn servers of their own, alike but for `JWT_ALGORITHM` (RS256
    with the run's key ring; HS256 with the secret `JWT_SIGNING_KEY`), on the same
    database, in alternating rounds (A B B A), CPU per request counted as for todos. Beside
    it, in-process: the median microseconds of one verification of each server's access
    token by our token backend (`KeyRingBackend.decode`: header, key by `kid`, signature,
    claims) and by PyJWT alone with the same key object, in a process of each
    configuration, alternating (A B B A).
    """
    v = run.volumes
    hmac = {"JWT_ALGORITHM": HMAC_ALGORITHM}
    envs = {ALGORITHM.lower(): run.env, HMAC_ALGORITHM.lower(): {**run.env, **hmac}}
    # Two servers of their own, started and warmed alike: only the algorithm differs.
    servers = {
        ALGORITHM.lower(): pool.get(v.main_db, "signed"),
        HMAC_ALGORITHM.lower(): pool.get(v.main_db, "hmac", **hmac),
    }
    tokens = {
        name: mint(run, v.main_db, ours=1, env=env)["ours"][0]["access"]
        for name, env in envs.items()
    }
    for name, server in servers.items():
        answer = request(server.port, "GET", SIDES["ours"].todos, token=tokens[name])
        if answer.status != 200:
            raise RuntimeError(f"GET /todos on the {name} server answered {answer.status}")
    loads = {
        name: partial(_cpu_round, server, SIDES["ours"].todos, tokens[name], v.wrk_connections)
        for name, server in servers.items()
    }
    results = _cpu_rounds(v, loads)
    micro = alternate(
        1,
        {
            name: partial(
                django_step,
                env,
                v.main_db,
                "bench.inside",
                "verify_cost",
                run.log,
                token=tokens[name],
                calls=v.verify_calls,
            )
            for name, env in envs.items()
        },
    )
    return {name: {**results[name], **medians(micro[name])} for name in envs}
