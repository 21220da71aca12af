"""Sliding-window counts for the guard: at most `limit` places taken in any `period` seconds.

Each count is a log of the times its places were taken, so no window edge resets it:
"5/minute" means at most five in any 60 seconds, whenever they fall. A claim takes one
place in each of several windows, all or none, and is named by a token, so it can give
back exactly the places it took.

Two stores keep the logs. With REDIS_URL set, Redis (every app server shares them):
each operation is one Lua script, so it is atomic however many servers race, and a
Redis that cannot be reached raises redis's ConnectionError or TimeoutError (the API
answers 503). Without it, this process's memory, under a lock (development, tests). The
time comes from the app server's clock, so app servers must keep theirs in step (NTP).
"""

import bisect
import functools
import math
import threading
import time
import uuid
from dataclasses import dataclass, field

from redis import Redis

from accounts.conf import app_settings

# Bounded waits: an unreachable Redis is a quick 503, not a hung worker.
REDIS_TIMEOUT_SECONDS = 2
# The in-process store drops logs nobody has touched for a period every this many claims.
SWEEP_EVERY = 1024


PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """`5/minute` -> (5, 60): a DRF-style rate, read as a sliding window's limit and period."""
    count, period = rate.split("/")
    return int(count), PERIODS[period[0]]


@dataclass(frozen=True)
class Window:
    """One count: its key, and at most `limit` places in any `period` seconds."""

    key: str
    limit: int
    period: int


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a place in each of some windows, all or none."""

    windows: tuple[Window, ...]
    token: str
    granted: bool
    # Places taken in each window, this claim's included when granted.
    counts: tuple[int, ...]
    # Milliseconds until each window's oldest place frees (0 for an empty window).
    waits_ms: tuple[int, ...]

    def full(self, index: int) -> bool:
        """Whether window `index` has no place left (after this claim, if granted)."""
        return self.counts[index] >= self.windows[index].limit

    def seconds_until_free(self, index: int) -> float:
        """Seconds until window `index` has a place again."""
        return self.waits_ms[index] / 1000

    @property
    def wait(self) -> float:
        """Seconds until a refused claim could be granted: every full window has a place."""
        full = [self.seconds_until_free(i) for i in range(len(self.windows)) if self.full(i)]
        return max(full, default=0.0)

    def give_back(self) -> None:
        """Free the places this claim took; nothing if it was refused."""
        if self.granted:
            store().release(self.windows, self.token)


def claim(*windows: Window) -> Claim:
    """Take a place in every window, or in none if any is full."""
    token = uuid.uuid4().hex
    granted, counts, waits = store().claim(windows, token, now_ms())
    return Claim(windows, token, granted, tuple(counts), tuple(waits))


def first_in_period(window: Window) -> bool:
    """True once per `window.period` for its key: so a lockout is recorded once, not per try."""
    return store().mark(f"{window.key}:noted", window.period * 1000, now_ms())


def now_ms() -> int:
    """The app server's clock, in milliseconds."""
    return math.floor(time.time() * 1000)


def store():
    """Redis when REDIS_URL is set, else this process's memory; read on every call."""
    url = app_settings.REDIS_URL
    return redis_store(url) if url else memory


# KEYS: the windows' keys. ARGV: now (ms), the token, then each window's limit and period
# (ms). Drops places older than the period, then adds the token to every log or to none.
CLAIM_SCRIPT = """
local now, token = tonumber(ARGV[1]), ARGV[2]
local counts, waits, granted = {}, {}, 1
for i, key in ipairs(KEYS) do
  local limit, period = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  counts[i] = redis.call('ZCARD', key)
  if counts[i] >= limit then granted = 0 end
end
for i, key in ipairs(KEYS) do
  local period = tonumber(ARGV[2 + 2 * i])
  if granted == 1 then
    redis.call('ZADD', key, now, token)
    -- Only tidies up: a log no place of which is in its window any more goes.
    redis.call('PEXPIRE', key, period)
    counts[i] = counts[i] + 1
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  waits[i] = oldest[2] and (tonumber(oldest[2]) + period - now) or 0
end
return {granted, counts, waits}
"""

# KEYS: the mark's key. ARGV: now (ms), how long the mark holds (ms). The mark holds until
# the time it stores, on the app's clock like the logs; Redis's own expiry only tidies up.
MARK_SCRIPT = """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[1]) or 0) > now then return 0 end
redis.call('SET', KEYS[1], now + ttl, 'PX', ttl)
return 1
"""

# KEYS: the windows' keys. ARGV: the token whose places to free.
RELEASE_SCRIPT = """
for _, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
end
return 0
"""


class RedisStore:
    """The logs as Redis sorted sets (score: the time a place was taken), shared by all."""

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self.claim_script = self.redis.register_script(CLAIM_SCRIPT)
        self.release_script = self.redis.register_script(RELEASE_SCRIPT)
        self.mark_script = self.redis.register_script(MARK_SCRIPT)

    def claim(self, windows, token: str, now: int) -> tuple[bool, list[int], list[int]]:
        limits = [arg for w in windows for arg in (w.limit, w.period * 1000)]
        granted, counts, waits = self.claim_script(
            keys=[w.key for w in windows], args=[now, token, *limits]
        )
        return bool(granted), [int(c) for c in counts], [int(w) for w in waits]

    def release(self, windows, token: str) -> None:
        self.release_script(keys=[w.key for w in windows], args=[token])

    def mark(self, key: str, ttl_ms: int, now: int) -> bool:
        return bool(self.mark_script(keys=[key], args=[now, ttl_ms]))


@functools.cache
def redis_store(url: str) -> RedisStore:
    """One client (and connection pool) per Redis URL, for the life of the process."""
    return RedisStore(url)


@dataclass
class _Log:
    """One window's places in this process: (time taken, token), oldest first."""

    period_ms: int
    places: list[tuple[int, str]] = field(default_factory=list)

    def drop_before(self, now: int) -> None:
        """Forget the places the window has moved past."""
        del self.places[: bisect.bisect_right(self.places, (now - self.period_ms, "\uffff"))]

    def wait_ms(self, now: int) -> int:
        return self.places[0][0] + self.period_ms - now if self.places else 0


class MemoryStore:
    """The logs in this process's memory, one lock around every operation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logs: dict[str, _Log] = {}
        self.marks: dict[str, int] = {}  # key: when the mark expires (ms)
        self.claims = 0

    def claim(self, windows, token: str, now: int) -> tuple[bool, list[int], list[int]]:
        with self.lock:
            self._sweep(now)
            logs = [self.logs.setdefault(w.key, _Log(w.period * 1000)) for w in windows]
            for window, log in zip(windows, logs, strict=True):
                log.period_ms = window.period * 1000  # a rate changed at run time applies
                log.drop_before(now)
            granted = all(len(log.places) < w.limit for w, log in zip(windows, logs, strict=True))
            if granted:
                for log in logs:
                    bisect.insort(log.places, (now, token))
            return granted, [len(log.places) for log in logs], [log.wait_ms(now) for log in logs]

    def release(self, windows, token: str) -> None:
        with self.lock:
            for window in windows:
                log = self.logs.get(window.key)
                if log is not None:
                    log.places = [place for place in log.places if place[1] != token]

    def mark(self, key: str, ttl_ms: int, now: int) -> bool:
        with self.lock:
            if self.marks.get(key, now) > now:
                return False
            self.marks[key] = now + ttl_ms
            return True

    def clear(self) -> None:
        """Forget every count (tests start from zero)."""
        with self.lock:
            self.logs.clear()
            self.marks.clear()

    def _sweep(self, now: int) -> None:
        """Drop logs and marks past their period, so random keys cannot grow memory forever."""
        self.claims += 1
        if self.claims % SWEEP_EVERY:
            return
        for key, log in list(self.logs.items()):
            log.drop_before(now)
            if not log.places:
                del self.logs[key]
        for key, expires in list(self.marks.items()):
            if expires <= now:
                del self.marks[key]


memory = MemoryStore()
