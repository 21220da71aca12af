"""Ended sessions in each process's memory, pushed through Redis: no round trip per request.

accounts.revocations keeps the ended sessions in Redis, read once per request. With
REVOCATION_FEED on, every process that authenticates also keeps them in memory, fed by
Redis pub/sub, and decides from memory alone while its copy is provably complete:

- **Filled before it is trusted.** The process subscribes, then reads every session ended
  lately from the security record. An end that committed before that read is in it; one
  that committed after is published after the subscription stood, so it arrives.
- **Nothing missed since.** Every LEASE / 4 the process sends PING on its subscription.
  Redis answers in order, so each message published before a PING was taken in before its
  PONG: the copy is trusted until LEASE after the last answered PING was sent. It also
  reads the record again every REVOCATION_LIST_SECONDS / 2, and is trusted only until
  REVOCATION_LIST_SECONDS after the last such read began.
- **Registered before it is trusted.** Before it extends its trust on a PONG, a feed
  enters its id in a registry in Redis (a sorted set), good until LEASE later on Redis's
  clock: so every feed that may be trusted at a moment is in the registry then.
- **Acknowledged before the response.** Ending a session publishes its id (with its
  marker, accounts.revocations), and in the same step reads who is in the registry; each
  subscribed process adds it, then acknowledges with its feed's id. The revoking request
  waits until as many distinct feeds as PUBLISH counted receivers, and every feed in the
  registry, have acknowledged; or LEASE: by then a process that did not (stopped,
  starved, its subscription dropped by Redis) no longer trusts its copy. Counting ids, not
  answers, a publish that Redis ran twice (a retry after a lost reply) is still counted
  once per feed. A revocation that cannot publish at all waits REVOCATION_LIST_SECONDS,
  as it does for its marker: by then every copy still trusted was read again since.
- **A Redis that restarted** counts only the subscribers of its new run, while one still
  holding its old connection trusts its copy until LEASE after its last PONG, from the old
  run. So while a run may be younger than LEASE, every revocation waits LEASE.

Anything else (no subscription yet, a reconnection, a failed read, a process resumed after
being stopped) and the copy is not trusted: the request goes to the list in Redis, and
from there to the database, as without the feed. LEASE is REVOCATION_LIST_SECONDS / 2.
"""

import json
import logging
import os
import threading
import time
import uuid

from django.db import DatabaseError, connections
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from accounts import revocation_window as window
from accounts import revocations as listed
from accounts.conf import app_settings

logger = logging.getLogger("accounts.revocations")

# PUBLISH, and who is in the registry at that very moment (Redis's clock, in ms).
PUBLISH_SCRIPT = """
local receivers = redis.call('PUBLISH', ARGV[1], ARGV[2])
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
return {receivers, redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')}
"""
# Enters a feed in the registry until LEASE (ARGV[2], ms) from now, and forgets the lapsed.
REGISTER_SCRIPT = """
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZADD', KEYS[1], now + ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], 2 * ARGV[2] + 1000)
return 1
"""


class FeedBroken(Exception):
    """The subscription cannot vouch for the copy any longer: subscribe again."""


class Feed:
    """This process's copy of the ended sessions, and the thread that keeps it, for one
    accounts.revocations.RevocationList (its Redis and channel). Request threads only read
    `trusted()` and `ended`; the feed's own thread alone writes them."""

    def __init__(self, revocations) -> None:
        self.revocations = revocations
        self.pid = os.getpid()
        self.id = uuid.uuid4().hex
        # Session id -> when (time.monotonic()) this process may forget it.
        self.ended: dict[str, float] = {}
        self.pong_until = self.read_until = 0.0
        self.read_at: float | None = None  # wall clock of the last read of the record
        self.connects = 0
        self.interrupted = False
        self.stopping = threading.Event()
        self.client = Redis.from_url(
            revocations.url,
            socket_connect_timeout=listed.TIMEOUT_SECONDS,
            socket_timeout=listed.TIMEOUT_SECONDS,
            # Never a silent reconnection: it would miss what was published meanwhile.
            retry=Retry(NoBackoff(), 0),
            redis_connect_func=self._connected,
        )
        self.thread = threading.Thread(target=self._run, name="revocation-feed", daemon=True)
        self.thread.start()

    # --- request threads ------------------------------------------------------------

    def trusted(self) -> bool:
        now = time.monotonic()
        return now < self.pong_until and now < self.read_until

    # --- the feed's thread ----------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _connected(self, connection) -> None:
        self._distrust()
        self.connects += 1
        connection.on_connect()

    def _distrust(self) -> None:
        self.pong_until = self.read_until = 0.0

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self._follow()
                except (FeedBroken, RedisError, DatabaseError, OSError) as error:
                    self._interrupted(error)
                except Exception as error:  # never a dead thread: it would only ever distrust
                    logger.exception("Revocation feed failed")
                    self._interrupted(error)
                self.stopping.wait(listed.BREAK_SECONDS)
        finally:
            self._distrust()
            connections.close_all()  # this thread's own connections

    def _interrupted(self, error: Exception) -> None:
        self._distrust()
        connections.close_all()
        if not self.interrupted:  # once per outage, not once a second
            logger.warning("Revocation feed interrupted, reading Redis meanwhile: %s", error)
        self.interrupted = True

    def _follow(self) -> None:
        """Subscribe, fill the copy, then keep it until something breaks or stop()."""
        pubsub = self.client.pubsub()
        try:
            pubsub.subscribe(self.revocations.channel)
            connects = self.connects
            _confirmed(pubsub)
            # The subscription stands in Redis: what commits from here on arrives.
            self._read(cold=True)
            self.interrupted = False
            lease = window.lifetime_seconds() / 2
            next_ping = time.monotonic()
            next_read = next_ping + window.lifetime_seconds() / 2
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= next_ping:
                    pubsub.ping(repr(now))  # the PONG brings back when it was sent
                    next_ping = now + lease / 4
                if now >= next_read:
                    self._read(cold=False)
                    next_read = now + window.lifetime_seconds() / 2
                wait = max(0.0, min(next_ping, next_read) - time.monotonic())
                message = pubsub.get_message(timeout=wait)
                if self.connects != connects:
                    raise FeedBroken("the subscription reconnected")
                if message is None:
                    continue
                if message["type"] == "pong":
                    sent = _sent_at(message["data"])
                    self._register(lease)  # first: the registry must outlive the trust
                    self.pong_until = sent + lease
                elif message["type"] == "message":
                    self._take(message["data"])
        finally:
            pubsub.close()

    def _take(self, data: bytes) -> None:
        """Add the ended sessions one message names, then acknowledge them."""
        try:
            message = json.loads(data)
            sids, ack = [str(sid) for sid in message["sids"]], str(message["ack"])
        except (ValueError, TypeError, KeyError):
            raise FeedBroken("a message that is not the list's") from None
        forget_at = time.monotonic() + window.marker_seconds()
        for sid in sids:
            self.ended[sid] = forget_at
        pipeline = self.revocations.redis.pipeline(transaction=False)
        pipeline.rpush(ack, self.id)
        pipeline.pexpire(ack, int(window.lifetime_seconds() * 1000) + 1000)
        pipeline.execute()

    def _register(self, lease: float) -> None:
        self.revocations.redis.eval(
            REGISTER_SCRIPT, 1, self.revocations.feeds_key, self.id, int(lease * 1000)
        )

    def _read(self, *, cold: bool) -> None:
        """Read the ended sessions from the record: all that may have live tokens when
        `cold`, else those since the last read (with its overlap); forget the expired."""
        began, wall = time.monotonic(), time.time()
        found = window.ended_since(window.replay_from(None if cold else self.read_at, wall))
        forget_at = time.monotonic() + window.marker_seconds()
        kept = {sid: until for sid, until in self.ended.items() if until > began}
        kept.update(dict.fromkeys(found, forget_at))
        self.ended, self.read_at = kept, wall
        self.read_until = began + window.lifetime_seconds()


def _confirmed(pubsub) -> None:
    """Wait for Redis to confirm the subscription, as long as a request waits for Redis."""
    deadline = time.monotonic() + listed.TIMEOUT_SECONDS
    while True:
        message = pubsub.get_message(timeout=0.05)
        if message is not None and message["type"] == "subscribe":
            return
        if time.monotonic() > deadline:
            raise FeedBroken("no confirmation of the subscription")


def _sent_at(data: bytes) -> float:
    """When the PING this PONG answers was sent, as the PING carried it."""
    try:
        return float(data)
    except ValueError:
        raise FeedBroken("a PONG to no PING of this feed's") from None


# --- the revoking side (accounts.revocations.RevocationList.mark) ----------------------


def publish(revoking, pipeline, sids: list[str], ack: str) -> None:
    """Add to `pipeline` the PUBLISH of `sids`, which answers (receivers, registered feeds)."""
    message = json.dumps({"sids": sids, "ack": ack})
    pipeline.eval(PUBLISH_SCRIPT, 1, revoking.feeds_key, revoking.channel, message)


def await_feeds(revoking, ack: str, receivers: int, registered: set[bytes]) -> None:
    """Wait until as many distinct feeds as PUBLISH reached, and every registered one, have
    taken the sessions in; or until any that did not can no longer be believed (LEASE)."""
    lease = window.lifetime_seconds() / 2
    lease_ends = time.monotonic() + lease + 0.1
    taken: set[bytes] = set()
    try:
        while len(taken) < receivers or not registered <= taken:
            left = lease_ends - time.monotonic()
            if left <= 0:
                break
            # Below the socket's timeout, so Redis answers first.
            popped = revoking.redis.blpop(
                [ack], timeout=max(0.01, min(left, listed.TIMEOUT_SECONDS / 2))
            )
            if popped:
                taken.add(popped[1])
    except RedisError as error:
        revoking._break(error)
    # A feed on a connection to an earlier Redis run was neither counted nor registered.
    young = time.monotonic() - revoking.run_began < lease
    feeds = receivers > 0 or app_settings.REVOCATION_FEED
    if len(taken) < receivers or not registered <= taken or (young and feeds):
        time.sleep(max(0.0, lease_ends - time.monotonic()))
