"""Authentication without a database query: ended sessions listed in Redis, trusted only fresh.

With REDIS_URL set, an access token whose signature, expiry and claims check out is
accepted on one Redis round trip (`MGET`) and no query, when Redis says both:

- the **list is fresh**: its epoch key exists, and was written in the Redis run this
  process is connected to (the server's `run_id`, read on every new connection: a
  restart, from a snapshot too, or a failover to a replica starts another run). A renewal
  writes it, together with a marker for every session ended lately (replayed from the
  security record), in one step that a FLUSHALL cannot split, and it expires by itself
  REVOCATION_LIST_SECONDS after the renewal began (on Redis's clock). So an epoch exists
  only while every session ended before a moment at most that long ago is marked.
- the token's **session is not marked** as ended.

Anything else (Redis unreachable, no epoch after a restart or a flush, a marker) sends
the request down the database path: the one query that always decides. A request that
finds the epoch gone or old renews it (one at a time across all servers, under a lock),
so the list warms itself; in the steady state one request a second pays for that.

Ending a session writes its marker before the response leaves (on commit of the
revoking transaction): the next request anywhere is refused. If that write fails, the
response waits REVOCATION_LIST_SECONDS first (retrying meanwhile): by then any epoch
that still exists came from a renewal that began after the commit, so it marks the
session. Either way, what was acknowledged is refused on the very next request.

The list speaks only for tokens whose `session_exp` is ahead and whose lifetime is no
longer than ACCESS_TOKEN_LIFETIME is now (a marker lives as long as today's tokens do).

With REVOCATION_FEED on (the default), each process also keeps the ended sessions in
memory, pushed to it through Redis, and skips the round trip while that copy is provably
complete; ending a session then also waits until every process has taken it in
(accounts.revocation_feed).

Requirements: Redis's `maxmemory-policy` must be `noeviction` (an evicted marker would let
a token in; a renewal checks, and keeps the list off otherwise). An account deactivated
by a queryset `update()`, raw SQL or `loaddata` skips the hooks that end its sessions;
the database path would still catch it, this one does not (accounts.hooks,
docs/sessions.md).
"""

import hashlib
import logging
import os
import threading
import time
import uuid

from django.db import DatabaseError
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from accounts import revocation_window as window
from accounts.conf import app_settings

logger = logging.getLogger("accounts.revocations")

# A request never waits long for Redis; past this it takes the database path.
TIMEOUT_SECONDS = 0.25
# After a failure, this process leaves Redis alone for this long (the database decides).
BREAK_SECONDS = 1.0
# The only eviction policy under which a marker stays until it expires.
SAFE_POLICY = "noeviction"

# Sets the epoch only if this renewal still holds the lock: a FLUSHALL or another
# renewal in between deletes or replaces it, and then this one writes nothing.
FINISH_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PXAT', ARGV[3])
redis.call('DEL', KEYS[1])
return 1
"""


class RevocationList:
    """The list on one Redis, for one issuer: read per request, written at each session end,
    renewed. Its keys carry a hash of the issuer, so two deployments that share a Redis
    never read each other's list, and one hash slot, so MGET works on a Redis Cluster."""

    def __init__(self, url: str, issuer: str) -> None:
        self.redis = self._client(url)
        # Every request's MGET goes through a connection of its thread's own: no pool to
        # take it from and give it back to, under a lock, on every read.
        self.readers = threading.local()
        self.url = url
        prefix = "{accounts:" + hashlib.sha256(issuer.encode()).hexdigest()[:16] + "}"
        self.epoch_key, self.lock_key = f"{prefix}:epoch", f"{prefix}:renewing"
        self.marker_prefix = f"{prefix}:ended:"
        # Where session ends are pushed to every process's feed, where each one's
        # acknowledgements gather (a list per revocation), and the feeds that may be
        # trusted now (accounts.revocation_feed).
        self.channel, self.ack_prefix = f"{prefix}:ends", f"{prefix}:ack:"
        self.feeds_key = f"{prefix}:feeds"
        self.finish_script = self.redis.register_script(FINISH_SCRIPT)
        # The run this process's connections reach: an epoch from another run (Redis
        # restarted, from a snapshot or a replica) vouches for nothing.
        self.run_id: bytes | None = None
        # When (time.monotonic()) that run began, at the latest.
        self.run_began = 0.0
        self.broken_until = 0.0
        self.warned = False
        self._feed = None
        self._feed_lock = threading.Lock()

    def _client(self, url: str, **options) -> Redis:
        return Redis.from_url(
            url,
            socket_connect_timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            # Once, at once, for a connection a restart broke; never a wait.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            redis_connect_func=self._connected,
            **options,
        )

    def reader(self) -> Redis:
        """This thread's own client, on one connection that it alone uses."""
        client = getattr(self.readers, "client", None)
        if client is None:
            client = self.readers.client = self._client(self.url, single_connection_client=True)
        return client

    def marker(self, sid) -> str:
        return f"{self.marker_prefix}{sid}"

    def _connected(self, connection) -> None:
        """On each new connection: the handshake, then the server's run_id and uptime."""
        connection.on_connect()
        connection.send_command("INFO", "server")
        info = connection.read_response()
        text = info.decode() if isinstance(info, bytes) else str(info)
        fields = dict(line.partition(":")[::2] for line in text.splitlines())
        run_id = fields.get("run_id", "").strip().encode() or None
        # Whole seconds, as a difference of two truncated clocks: the run began up to a
        # second after `uptime` seconds ago. The latest possible start, so no run looks older.
        uptime = int(fields.get("uptime_in_seconds", "0").strip() or 0)
        began = time.monotonic() - max(0, uptime - 1)
        if run_id != self.run_id:
            self.run_id, self.run_began = run_id, began
        else:
            self.run_began = min(self.run_began, began)

    def feed(self):
        """This process's feed (accounts.revocation_feed), started on first use; None if off."""
        feed = self._feed
        if feed is not None and feed.pid == os.getpid():
            return feed
        if not app_settings.REVOCATION_FEED:
            return None
        from accounts.revocation_feed import Feed  # it reads this module's functions

        with self._feed_lock:
            if self._feed is None or self._feed.pid != os.getpid():
                self._feed = Feed(self)  # a fork keeps no thread: each process its own
            return self._feed

    # --- every request ------------------------------------------------------------

    def vouches_for(self, sid: str) -> bool:
        """True if Redis says `sid` is live and may be believed; False means: ask the database."""
        feed = self.feed()
        if feed is not None and feed.trusted():
            return sid not in feed.ended
        if time.monotonic() < self.broken_until:
            return False
        try:
            epoch, ended = self.reader().mget(self.epoch_key, self.marker(sid))
        except RedisError as error:
            self._break(error)
            return False
        run, _, began = (epoch or b"").partition(b":")
        current = epoch is not None and run == self.run_id
        if not current or time.time() - int(began) / 1000 > window.lifetime_seconds() / 2:
            self.renew(began if current else None)
        return current and ended is None

    # --- every session end ----------------------------------------------------------

    def mark(self, sids: list[str]) -> None:
        """Mark ended sessions and push them to every feed before the response goes; if
        Redis cannot take it, wait until no epoch and no feed that lacks them can be
        believed (see the module's docstring and accounts.revocation_feed)."""
        from accounts import revocation_feed  # it reads this module when imported

        deadline = time.monotonic() + window.lifetime_seconds() + 0.1
        ack = f"{self.ack_prefix}{uuid.uuid4().hex}"
        while True:
            try:
                pipeline = self._set_markers(self.redis.pipeline(transaction=False), sids)
                revocation_feed.publish(self, pipeline, sids, ack)
                *_, (receivers, live) = pipeline.execute()
                break
            except RedisError as error:
                self._break(error)
            if time.monotonic() >= deadline:
                return
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        revocation_feed.await_feeds(self, ack, receivers, {bytes(feed) for feed in live})

    # --- renewal --------------------------------------------------------------------

    def renew(self, epoch: bytes | None) -> bool:
        """Replay the ended sessions since the last renewal began (`epoch`, in Redis's ms; all
        that may still have a live token when there is none), then set a new epoch; True if
        this call did.

        One renewal at a time across every server (a lock that expires by itself);
        the others keep deciding as they would have.
        """
        token = uuid.uuid4().hex
        try:
            lock = int(window.lifetime_seconds() * 500)
            if not self.redis.set(self.lock_key, token, nx=True, px=lock):
                return False
            seconds, micros = self.redis.time()
            began_ms = seconds * 1000 + micros // 1000
            server = self.redis.info("server")
            if not self._memory_is_safe():
                return False
            last = int(epoch) / 1000 if epoch is not None else None
            since = window.replay_from(last, began_ms / 1000)
            pipeline = self._set_markers(
                self.redis.pipeline(transaction=False), window.ended_since(since)
            )
            pipeline.execute()
            done = self.finish_script(
                keys=[self.lock_key, self.epoch_key],
                args=[
                    token,
                    f"{server['run_id']}:{began_ms}",
                    began_ms + int(window.lifetime_seconds() * 1000),
                ],
            )
        except RedisError as error:
            self._break(error)
            return False
        except DatabaseError:
            return False  # the lock expires by itself; the next request tries again
        return bool(done)

    def _memory_is_safe(self) -> bool:
        policy = self.redis.info("memory").get("maxmemory_policy", SAFE_POLICY)
        if policy == SAFE_POLICY:
            return True
        if not self.warned:
            logger.warning(
                "Redis evicts keys (maxmemory-policy %s): every request asks the database; "
                "set maxmemory-policy noeviction to authenticate without a query.",
                policy,
            )
            self.warned = True
        return False

    def _set_markers(self, pipeline, sids):
        ttl = window.marker_seconds()
        for sid in sids:
            pipeline.set(self.marker(sid), b"1", ex=ttl)
        return pipeline

    def _break(self, error: Exception) -> None:
        if time.monotonic() >= self.broken_until:
            logger.warning("Redis unreachable, authenticating from the database: %s", error)
        self.broken_until = time.monotonic() + BREAK_SECONDS


_lists: dict[tuple[str, str], RevocationList] = {}
_lists_lock = threading.Lock()


def revocation_list() -> RevocationList | None:
    """The list on REDIS_URL for ISSUER, one per process; None when there is no Redis or
    it is off."""
    url = app_settings.REDIS_URL
    if not url or not window.lifetime_seconds():
        return None
    issuer = app_settings.ISSUER or ""
    found = _lists.get((url, issuer))  # every request: no lock once it exists
    if found is None:
        with _lists_lock:
            found = _lists.get((url, issuer)) or RevocationList(url, issuer)
            _lists[url, issuer] = found
    return found


def sessions_ended(sids) -> None:
    """On commit of a revocation: mark its sessions ended (accounts.models.sessions)."""
    revocations = revocation_list()
    if revocations is not None and sids:
        revocations.mark([str(sid) for sid in sids])


def stop_feeds() -> None:
    """Stop every feed this process started (tests; a process's own exit does it too)."""
    for found in list(_lists.values()):
        if found._feed is not None:
            found._feed.stop()
            found._feed = None
