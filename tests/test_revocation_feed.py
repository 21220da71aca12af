"""Ended sessions in each process's memory, pushed through Redis (accounts.revocation_feed).

The feed runs in this test process, on a redis-server of this module's own, with short
leases: REVOCATION_LIST_SECONDS 0.8, so a feed is trusted 0.4 s past its last PONG and
0.8 s past its last read of the record.
"""

import json
import threading
import time
import uuid

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from redis import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from accounts import revocation_feed, revocation_window, revocations
from accounts.revocations import revocation_list
from accounts.signing import token_backend
from tests.conftest import bearer, wait_until
from tests.redis_process import RedisProcess
from todos.models import Todo

pytestmark = pytest.mark.django_db(transaction=True)

LIST_SECONDS = 0.8
LEASE = LIST_SECONDS / 2


@pytest.fixture(scope="module")
def redis_process():
    server = RedisProcess()
    yield server.start()
    server.close()


@pytest.fixture
def fed(redis_process, settings, monkeypatch):
    """The feed on, on this module's Redis (flushed); returns a client of that Redis."""
    client = Redis.from_url(redis_process.url)
    client.flushall()
    client.config_resetstat()
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "REDIS_URL": redis_process.url,
        "REVOCATION_LIST_SECONDS": LIST_SECONDS,
        "REVOCATION_FEED": True,
    }
    monkeypatch.setattr(revocations, "BREAK_SECONDS", 0.05)
    yield client
    revocations.stop_feeds()


def warm_feed():
    """This process's feed, started and trusted, on a Redis run older than a lease plus
    a second (a younger run makes every revocation wait the lease)."""
    listed = revocation_list()
    feed = listed.feed()
    wait_until(feed.trusted)
    listed.redis.ping()  # a connection of the list's own: it learns the run's uptime
    wait_until(lambda: time.monotonic() - listed.run_began >= LEASE + 0.05)
    return feed


def calls(client: Redis, command: str) -> int:
    return client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


def sid_of(pair: dict) -> str:
    return token_backend.decode(pair["access_token"])["sid"]


def logout(api_client, pair: dict) -> float:
    """Log `pair`'s session out; the seconds it took."""
    began = time.monotonic()
    response = api_client.post(
        "/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert response.status_code == 200, response.content
    return time.monotonic() - began


def test_a_trusted_feed_decides_with_no_query_and_no_redis_round_trip(fed, api_client, user, login):
    pair = login(user)
    Todo.objects.create(owner=user, title="one")
    warm_feed()
    reads = calls(fed, "mget")
    for _ in range(20):
        with CaptureQueriesContext(connection) as captured:
            response = api_client.get("/todos", **bearer(pair["access_token"]))
        assert response.status_code == 200 and response.json()[0]["title"] == "one"
        [only] = [query["sql"] for query in captured.captured_queries]
        assert "todos_todo" in only
    assert calls(fed, "mget") == reads


def test_a_logout_returns_once_the_feed_has_taken_the_session_in(fed, api_client, user, login):
    feed = warm_feed()
    pair = login(user)
    assert api_client.get("/todos", **bearer(pair["access_token"])).status_code == 200
    took = logout(api_client, pair)
    assert sid_of(pair) in feed.ended and feed.trusted()
    assert took < LEASE  # acknowledged, not waited out
    assert api_client.get("/todos", **bearer(pair["access_token"])).status_code == 401


class Subscriber(threading.Thread):
    """Another process's feed, as Redis sees it: subscribed to the channel; it acknowledges
    each message after `delay` seconds, or never."""

    def __init__(self, url: str, channel: str, delay: float | None) -> None:
        super().__init__(daemon=True)
        self.client = Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        wait_until(lambda: self.client.pubsub_numsub(channel)[0][1] >= 1)
        self.delay, self.stopping = delay, threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            message = self.pubsub.get_message(timeout=0.05)
            if message and self.delay is not None:
                time.sleep(self.delay)
                self.client.rpush(json.loads(message["data"])["ack"], b"1")

    def close(self) -> None:
        self.stopping.set()
        self.join(2)
        self.pubsub.close()


@pytest.mark.parametrize(("delay", "at_least", "below"), [(0.15, 0.15, LEASE), (None, LEASE, 1.5)])
def test_a_revocation_waits_for_every_feed_or_for_their_lease(
    fed, api_client, user, login, delay, at_least, below
):
    warm_feed()
    listed = revocation_list()
    other = Subscriber(listed.url, listed.channel, delay)
    other.start()
    try:
        took = logout(api_client, login(user))
    finally:
        other.close()
    assert at_least <= took < below


def test_a_young_redis_run_makes_every_revocation_wait_a_lease(
    fed, redis_process, api_client, user, login
):
    feed = warm_feed()
    assert logout(api_client, login(user)) < LEASE
    redis_process.stop()
    redis_process.start()  # a new run: a feed of the old one would not have been counted
    pair = login(user)
    wait_until(feed.trusted)
    assert logout(api_client, pair) >= LEASE
    assert sid_of(pair) in feed.ended


def test_a_session_ended_while_redis_was_away_is_refused_once_the_feed_is_back(
    fed, redis_process, api_client, user, login
):
    feed = warm_feed()
    pair = login(user)
    redis_process.stop()
    wait_until(lambda: not feed.trusted())
    logout(api_client, pair)  # no Redis: its marker and its message are lost
    assert api_client.get("/todos", **bearer(pair["access_token"])).status_code == 401
    redis_process.start()  # empty
    wait_until(feed.trusted)
    assert sid_of(pair) in feed.ended  # read from the record when it subscribed again
    reads = calls(fed, "mget")
    assert api_client.get("/todos", **bearer(pair["access_token"])).status_code == 401
    alive = login(user)
    assert api_client.get("/todos", **bearer(alive["access_token"])).status_code == 200
    assert calls(fed, "mget") == reads  # the feed decided both


def test_a_revocation_that_cannot_reach_redis_is_read_from_the_record_before_it_returns(
    fed, api_client, user, login, monkeypatch
):
    """A revoking server cut off from Redis while this process's feed is not: the feed
    reads the record again before the logout returns (or stops being trusted)."""
    feed = warm_feed()
    pair = login(user)
    listed = revocation_list()
    monkeypatch.setattr(listed, "redis", Redis.from_url("redis://127.0.0.1:1/0"))
    took = logout(api_client, pair)
    assert took >= LIST_SECONDS
    assert sid_of(pair) in feed.ended or not feed.trusted()
    assert api_client.get("/todos", **bearer(pair["access_token"])).status_code == 401


def test_a_feed_that_cannot_read_the_record_stops_being_trusted(fed, monkeypatch):
    feed = warm_feed()

    def unreachable(since):
        raise DatabaseError("the database is away")

    monkeypatch.setattr(revocation_window, "ended_since", unreachable)
    wait_until(lambda: not feed.trusted(), timeout=LIST_SECONDS + 1)
    monkeypatch.undo()


def test_a_feed_whose_subscription_is_cut_reads_everything_again(fed, user, monkeypatch):
    feed = warm_feed()
    # Nothing is read again until this test says so: the reconnection alone must read.
    reads = []
    monkeypatch.setattr(revocation_window, "ended_since", lambda since: reads.append(since) or [])
    time.sleep(LIST_SECONDS / 2)  # the feed's read in progress, if any, is over
    reads.clear()
    fed.client_kill_filter(_type="pubsub")
    wait_until(lambda: bool(reads) and feed.trusted())
    # A cold read: everything since before any live token was issued.
    assert time.time() - reads[0].timestamp() > revocation_window.token_lifetime().total_seconds()


def test_a_message_that_is_not_the_lists_makes_the_feed_subscribe_again(fed):
    feed = warm_feed()
    fed.publish(revocation_list().channel, b"not json")
    wait_until(lambda: not feed.trusted())
    wait_until(feed.trusted)


def slow_to_take(monkeypatch, seconds: float) -> None:
    """This process's feed takes `seconds` to take in each message (a starved thread)."""
    take = revocation_feed.Feed._take

    def slow(self, data):
        time.sleep(seconds)
        take(self, data)

    monkeypatch.setattr(revocation_feed.Feed, "_take", slow)


def test_a_publish_redis_ran_twice_counts_each_feed_once(fed, monkeypatch):
    """The first attempt's reply is lost after Redis ran it, so mark() publishes again: a
    fast feed acknowledges both, and must still count once, or the slow one is not waited
    for."""
    feed = warm_feed()
    listed = revocation_list()
    slow_to_take(monkeypatch, 0.2)
    pipeline, lost = listed.redis.pipeline, []

    def losing_its_first_reply(*args, **kwargs):
        made = pipeline(*args, **kwargs)
        execute = made.execute

        def execute_then_lose():
            answer = execute()
            if not lost:
                lost.append(answer)
                raise RedisTimeoutError("the reply was lost")
            return answer

        made.execute = execute_then_lose
        return made

    monkeypatch.setattr(listed, "redis", listed.redis)
    monkeypatch.setattr(listed.redis, "pipeline", losing_its_first_reply)
    monkeypatch.setattr(revocations, "BREAK_SECONDS", 0)
    fast = Subscriber(listed.url, listed.channel, 0.0)
    fast.start()
    sid = str(uuid.uuid4())
    try:
        listed.mark([sid])
    finally:
        fast.close()
    assert lost and calls(fed, "eval") >= 2  # published twice
    assert sid in feed.ended or not feed.trusted()
    assert not listed.vouches_for(sid)


def test_a_feed_whose_subscription_redis_dropped_is_waited_out(fed, monkeypatch):
    """Redis drops a feed's subscription while its thread is busy reading the record: PUBLISH
    does not count it, but the registry names it, so the revocation waits out its lease."""
    warm_feed()
    listed = revocation_list()
    read, reading = revocation_window.ended_since, []

    def slow(since):
        reading.append(since)
        time.sleep(LEASE)
        return read(since)

    monkeypatch.setattr(revocation_window, "ended_since", slow)
    wait_until(lambda: bool(reading))
    fed.client_kill_filter(_type="pubsub")
    sid, began = str(uuid.uuid4()), time.monotonic()
    listed.mark([sid])
    assert time.monotonic() - began >= LEASE
    assert not listed.vouches_for(sid)


def test_a_feed_that_acknowledges_twice_counts_once(fed):
    """With the registry empty (a FLUSHALL), what a revocation waits for is PUBLISH's count,
    of distinct feeds: two answers from one feed leave the other one waited out."""
    listed = revocation_list()
    listed.redis.ping()
    wait_until(lambda: time.monotonic() - listed.run_began >= LEASE + 0.05)
    ack = f"{listed.ack_prefix}{uuid.uuid4().hex}"
    fed.rpush(ack, b"one-feed", b"one-feed")
    began = time.monotonic()
    revocation_feed.await_feeds(listed, ack, 2, set())
    assert time.monotonic() - began >= LEASE
    fed.rpush(ack, b"one-feed", b"another-feed")
    began = time.monotonic()
    revocation_feed.await_feeds(listed, ack, 2, set())
    assert time.monotonic() - began < LEASE


class Handshake:
    """A connection whose INFO says this run has been up `uptime` whole seconds."""

    def __init__(self, run_id: str, uptime: int) -> None:
        self.info = f"# Server\r\nrun_id:{run_id}\r\nuptime_in_seconds:{uptime}\r\n".encode()

    def on_connect(self) -> None:
        pass

    def send_command(self, *args) -> None:
        pass

    def read_response(self) -> bytes:
        return self.info


def test_a_runs_age_is_read_as_its_least_possible(fed):
    """Redis's uptime is a difference of two truncated clocks: 1 may mean 0.1 s. A run is
    taken to have begun at the latest moment it can have, so none looks older than it is."""
    listed = revocation_list()
    listed._connected(Handshake("a-new-run", 1))
    assert time.monotonic() - listed.run_began < 0.05
    listed._connected(Handshake("another-run", 5))
    assert 3.95 < time.monotonic() - listed.run_began < 4.05
    listed._connected(Handshake("another-run", 9))  # the same run again: the tighter bound
    assert 7.95 < time.monotonic() - listed.run_began < 8.05
