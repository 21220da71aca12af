"""Sliding windows, in this process and in Redis: no edge resets a count, claims are atomic."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis import Redis

from accounts import windows
from accounts.windows import Window, claim, first_in_period

FIVE_A_MINUTE = Window("test:five", 5, 60)
START = "2026-02-01 08:00:57"


@pytest.fixture
def clock(time_machine):
    """A frozen clock at second 57 of a minute; `clock(seconds)` moves it on."""
    time_machine.move_to(START, tick=False)
    return time_machine.shift


def claims(window: Window, times: int) -> list[bool]:
    return [claim(window).granted for _ in range(times)]


def test_no_window_edge_resets_the_count(store, clock):
    """The review's finding 14: 3 at second 57 and 2 at second 01 are five in four seconds."""
    assert claims(FIVE_A_MINUTE, 3) == [True] * 3
    clock(4)  # 08:01:01, past the edge of a fixed minute
    assert claims(FIVE_A_MINUTE, 2) == [True] * 2
    refused = claim(FIVE_A_MINUTE)
    assert not refused.granted
    assert refused.wait == 56  # the places taken at 08:00:57 free at 08:01:57


def test_a_place_frees_exactly_one_period_after_it_was_taken(store, clock):
    claims(FIVE_A_MINUTE, 5)
    clock(59.999)
    assert not claim(FIVE_A_MINUTE).granted
    clock(0.001)
    assert claims(FIVE_A_MINUTE, 6) == [True] * 5 + [False]


def test_the_wait_is_until_the_oldest_place_frees(store, clock):
    for _ in range(5):
        assert claim(FIVE_A_MINUTE).granted
        clock(10)  # places at 0, 10, 20, 30, 40 s
    clock(-5)  # 45 s
    refused = claim(FIVE_A_MINUTE)
    assert (refused.granted, refused.counts, refused.wait) == (False, (5,), 15)
    clock(15)  # 60 s: the first place is free, and only it
    assert claims(FIVE_A_MINUTE, 2) == [True, False]
    assert claim(FIVE_A_MINUTE).wait == 10


def test_a_granted_claim_reports_its_count_and_when_the_window_frees(store, clock):
    first = claim(FIVE_A_MINUTE)
    clock(12)
    second = claim(FIVE_A_MINUTE)
    assert (first.counts, second.counts) == ((1,), (2,))
    assert (first.full(0), second.seconds_until_free(0)) == (False, 48)


def test_give_back_frees_exactly_the_places_of_that_claim(store, clock):
    kept = [claim(FIVE_A_MINUTE) for _ in range(4)]
    given_back = claim(FIVE_A_MINUTE)
    assert given_back.full(0)
    given_back.give_back()
    given_back.give_back()  # twice is once
    assert claims(FIVE_A_MINUTE, 2) == [True, False]
    assert all(c.granted for c in kept)


def test_a_refused_claim_takes_no_place_and_gives_none_back(store, clock):
    claims(FIVE_A_MINUTE, 5)
    refused = claim(FIVE_A_MINUTE)
    refused.give_back()
    clock(60)
    assert claims(FIVE_A_MINUTE, 6) == [True] * 5 + [False]


def test_a_claim_on_several_windows_takes_a_place_in_all_or_none(store, clock):
    small, large = Window("test:small", 1, 60), Window("test:large", 3, 60)
    assert claim(small, large).granted
    refused = claim(small, large)
    assert (refused.granted, refused.counts) == (False, (1, 1))
    assert refused.wait == 60
    # The refusal took nothing from the other window: two places are still free there.
    assert claims(large, 3) == [True, True, False]


def test_windows_of_other_keys_are_apart(store, clock):
    claims(FIVE_A_MINUTE, 5)
    assert claim(Window("test:other", 5, 60)).granted


def test_a_lowered_rate_applies_at_once(store, clock):
    claims(FIVE_A_MINUTE, 3)
    assert not claim(Window(FIVE_A_MINUTE.key, 2, 60)).granted


def test_parallel_claims_never_take_more_places_than_the_limit(store):
    barrier = threading.Barrier(20)

    def race(_):
        barrier.wait(timeout=10)
        return claim(FIVE_A_MINUTE).granted

    with ThreadPoolExecutor(max_workers=20) as pool:
        granted = list(pool.map(race, range(20)))
    assert granted.count(True) == 5


def test_first_in_period_is_true_once_a_period(store, clock):
    assert first_in_period(FIVE_A_MINUTE)
    assert not first_in_period(FIVE_A_MINUTE)
    clock(59)
    assert not first_in_period(FIVE_A_MINUTE)
    clock(1)
    assert first_in_period(FIVE_A_MINUTE)


def test_first_in_period_races_to_one_winner(store):
    barrier = threading.Barrier(20)

    def race(_):
        barrier.wait(timeout=10)
        return first_in_period(FIVE_A_MINUTE)

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert list(pool.map(race, range(20))).count(True) == 1


def test_redis_keeps_a_log_no_longer_than_its_period(redis_server, settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": redis_server}
    redis = Redis.from_url(redis_server)
    redis.flushdb()
    claim(FIVE_A_MINUTE)
    first_in_period(FIVE_A_MINUTE)
    assert 59_000 < redis.pttl(FIVE_A_MINUTE.key) <= 60_000
    assert 59_000 < redis.pttl(f"{FIVE_A_MINUTE.key}:noted") <= 60_000


def test_memory_forgets_logs_past_their_period(settings, clock, monkeypatch):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "REDIS_URL": ""}
    monkeypatch.setattr(windows, "SWEEP_EVERY", 1)
    for n in range(100):
        claim(Window(f"test:random-{n}", 5, 60))
    first_in_period(FIVE_A_MINUTE)
    clock(60)
    claim(FIVE_A_MINUTE)
    assert set(windows.memory.logs) == {FIVE_A_MINUTE.key}
    assert not windows.memory.marks
