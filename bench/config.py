"""What a bench run compares and how much: the endpoints, the volumes, the environment."""

import os
import secrets
from dataclasses import dataclass, field
from typing import IO

from accounts import keys


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its todo list, its refresh route and the tokens' field names."""

    todos: str
    refresh: str | None = None
    # The refresh token's name in the request body and the answer; the access token's.
    refresh_field: str | None = None
    access_field: str | None = None
    # A side without a login of its own authenticates the tokens of this one.
    tokens_of: str | None = None

    def minted_by(self, name: str) -> str:
        """The side whose tokens this one (named `name`) authenticates."""
        return self.tokens_of or name


# The one table of compared endpoints; every measure and the report read it.
SIDES = {
    "ours": Side("/todos", "/auth/refresh", "refresh_token", "access_token"),
    # bench/urls.py: the same TodoViewSet behind JWTAuthentication, and TokenRefreshView.
    "stock": Side("/stock/todos", "/stock/refresh", "refresh", "access"),
    # bench/urls.py: the same TodoViewSet behind JWTStatelessUserAuthentication (no query,
    # no revocation), filtered by the token's user id.
    "stateless": Side("/stateless/todos", tokens_of="stock"),
    # bench/floor.py: no DRF, no SimpleJWT; the same checks, SQL and bytes by hand.
    "floor": Side("/floor/todos", tokens_of="ours"),
}
REFRESHING = ("ours", "stock")
BENCH_USERNAME = "bench"
# The product's default algorithm (project.settings), which every side signs and verifies
# with; the `algorithm` measure sets it against HS256 on a server of its own.
ALGORITHM = "RS256"
HMAC_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Volumes:
    """How much data and traffic one run uses, and the names of its databases."""

    main_db: str = "bench"
    large_db: str = "bench_1m"
    small_tokens: int = 1_000
    small_sessions: int = 200
    # 1M expired tokens, half blacklisted: 100k sessions of two, the rest stock chains of two.
    large_tokens: int = 1_000_000
    large_sessions: int = 100_000
    # The security record at the size the admin must stay usable at, and as many again
    # past retention as cleanup may find when it has not run for a while.
    large_events: int = 1_000_000
    large_old_events: int = 100_000
    runs: int = 3
    # Each round runs the sides forward then backward (A B C C B A).
    wrk_rounds: int = 4
    wrk_seconds: int = 3
    # One per server thread (bench.servers): busy, and never queueing on one another.
    wrk_connections: int = 4
    rounds: int = 4
    refreshes_per_round: int = 30
    logins_per_round: int = 4
    scale_refreshes: int = 20
    scale_requests: int = 40
    # The algorithm measure's in-process verifications, per way of verifying.
    verify_calls: int = 3_000
    race_size: int = 50
    # The instances measure: log in, out on A, call B, this many times.
    instance_logouts: int = 200
    # The memory measure: todos in the largest list (None: TODO_LIMIT_PER_USER), and how
    # many GET it at once, each on a server thread of its own.
    largest_list: int | None = None
    concurrent_gets: int = 8
    admin_renders: int = 5
    cleanup_loop_seconds: int = 10
    cleanup_timeout: int = 420
    # Session events: logouts timed to the resource server's 401; logouts per side per round
    # with three receivers against none.
    event_logouts: int = 50
    receiver_logouts: int = 20


QUICK = Volumes(
    main_db="bench_quick",
    large_db="bench_quick_1m",
    large_tokens=20_000,
    large_sessions=2_000,
    large_events=20_000,
    large_old_events=2_000,
    runs=1,
    wrk_rounds=1,
    wrk_seconds=2,
    rounds=2,
    refreshes_per_round=10,
    logins_per_round=1,
    scale_refreshes=10,
    scale_requests=20,
    verify_calls=500,
    admin_renders=2,
    instance_logouts=20,
    # Past one streamed chunk (todos.views.STREAM_CHUNK), and still quick.
    largest_list=150,
    cleanup_loop_seconds=3,
    cleanup_timeout=60,
    event_logouts=10,
    receiver_logouts=5,
)


@dataclass
class Run:
    """One bench run: its volumes, log, the bench user's password, and every process's env."""

    volumes: Volumes
    log: IO
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    password_hash: str = ""
    env: dict = field(default_factory=dict)

    def __post_init__(self):
        private, public = _key_pair()
        self.env = {
            **os.environ,
            "DEBUG": "0",
            # Fresh per run, shared by every server of the run (two instances, one key).
            "SECRET_KEY": secrets.token_urlsafe(64),
            "JWT_ALGORITHM": ALGORITHM,
            "JWT_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(64),
            "JWT_ISSUER": "http://127.0.0.1",
            # One key pair per run: bench.inside.prepare imports it into the key ring as
            # the active key, and bench.settings gives the same pair to stock SimpleJWT and
            # the floor, so every side signs and verifies with the very same key.
            "BENCH_SIGNING_KEY": private,
            "BENCH_VERIFYING_KEY": public,
            # The secret of the `algorithm` measure's HS256 server (JWT_ALGORITHM=HS256).
            "JWT_SIGNING_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "PYTHONUNBUFFERED": "1",
        }
        # Never the caller's Redis: bench.__main__ starts one of the run's own and sets
        # REDIS_URL for every process (the revocation list, throttles, the event broker).
        self.env.pop("REDIS_URL", None)


def _key_pair() -> tuple[str, str]:
    """A fresh key pair for ALGORITHM as PEM, made as the key ring makes its own."""
    private = keys.generate(ALGORITHM)
    return keys.private_pem(private), keys.public_pem(private)
