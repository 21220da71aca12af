"""What one bench run needs: databases, volumes, rounds, and the environment of its processes."""

import os
import secrets
from dataclasses import dataclass, field
from typing import IO

MAIN_DB = "bench"
LARGE_DB = "bench_1m"


@dataclass
class Volumes:
    """How much data and traffic one run uses."""

    large_tokens: int = 1_000_000
    large_sessions: int = 200_000
    small_tokens: int = 1_000
    small_sessions: int = 200
    rounds: int = 6
    wrk_rounds: int = 16
    wrk_seconds: int = 3
    # Enough keep-alive connections that both gunicorn workers always get some: with 8,
    # wrk sometimes pinned every connection to one worker, halving a round's throughput.
    wrk_connections: int = 32
    refreshes_per_round: int = 40
    logins_per_round: int = 3
    scale_refreshes: int = 30
    scale_requests: int = 60
    race_size: int = 50
    # The whole run stays under 10 minutes: cleanup, last, gets what is left of this.
    budget_seconds: int = 560


QUICK = Volumes(
    large_tokens=20_000,
    large_sessions=4_000,
    rounds=2,
    wrk_rounds=2,
    wrk_seconds=2,
    refreshes_per_round=10,
    logins_per_round=1,
    scale_refreshes=10,
    scale_requests=20,
)


@dataclass
class Run:
    """One bench run: its volumes, log, load tool and the environment of every process."""

    volumes: Volumes
    log: IO
    wrk: str | None
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    env: dict = field(default_factory=dict)

    def __post_init__(self):
        self.env = {
            **os.environ,
            **self.env,
            "DEBUG": "0",
            # Fresh per run, shared by every server of the run (two instances, one key).
            "SECRET_KEY": secrets.token_urlsafe(64),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "PYTHONUNBUFFERED": "1",
        }
        # The bench measures the API, not a throttle shared through Redis.
        self.env.pop("REDIS_URL", None)
