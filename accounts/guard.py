"""The brute-force policy: one set of limits for every door where a password is checked.

Doors: the API login, the admin login, and the old password of a password change
(API and admin). At each door the same counters apply, all in the cache (Redis in
production, so every app server shares them):

- ``login``: password checks per client address, right or wrong;
- ``login_failure``: wrong passwords per normalized identity and client address;
- ``username_failure``: wrong passwords per normalized identity, from every address
  (guessing spread over many addresses).

An IPv6 client counts as its /64 network, which one host commonly holds whole. Past any
limit the door refuses without checking the password, so the right password waits too,
until the window ends. Counters are fixed windows on atomic ``incr``: a check reserves
its place before the password is hashed, so parallel guesses cannot all slip under the
limit, and a right password gives its place back.
"""

import contextlib
import hashlib
import time
import unicodedata
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.exceptions import Throttled

from accounts.clients import Client, network
from accounts.events import security_event

API_LOGIN = "api_login"
ADMIN_LOGIN = "admin_login"
API_PASSWORD_CHANGE = "api_password_change"
ADMIN_PASSWORD_CHANGE = "admin_password_change"

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def looked_up(username: str) -> str:
    """The username as authentication looks it up: stripped, then NFKC-normalized."""
    return unicodedata.normalize("NFKC", username.strip())


def identity(username: str) -> str:
    """The username as the counters key it: as looked up, and case-folded.

    Every spelling that reaches one account counts as one. Case-folding joins the
    spellings that only a case-insensitive user model would treat as equal; for the
    default (case-sensitive) model it can only throttle more, never less.
    """
    return looked_up(username).casefold()


class Counter:
    """A fixed-window count of one kind of event for one key, shared through the cache."""

    def __init__(self, scope: str, *parts: str | None) -> None:
        self.limit, self.period = parse_rate(settings.THROTTLE_RATES[scope])
        self.window, elapsed = divmod(int(time.time()), self.period)
        self.seconds_left = self.period - elapsed
        # Hashed: any string a client sends makes a valid, bounded cache key.
        digest = hashlib.sha256("\0".join(str(part) for part in parts).encode()).hexdigest()
        self.key = f"guard:{scope}:{digest}:{self.window}"

    def add(self) -> int:
        """Count one; returns the count in this window, this one included."""
        # Kept past its window, so it never expires while still being counted.
        cache.add(self.key, 0, timeout=2 * self.period)
        try:
            return cache.incr(self.key)
        except ValueError:  # evicted between add() and incr()
            cache.set(self.key, 1, timeout=2 * self.period)
            return 1

    def give_back(self) -> None:
        """Undo one add()."""
        # ValueError: the window was evicted, so there is nothing to give back.
        with contextlib.suppress(ValueError):
            cache.decr(self.key)

    def refuse(self) -> Throttled:
        """The 429 for a request past this limit, with Retry-After."""
        return Throttled(wait=self.seconds_left)


def parse_rate(rate: str) -> tuple[int, int]:
    """`5/minute` -> (5, 60); the settings check the format at start-up."""
    count, period = rate.split("/")
    return int(count), PERIODS[period[0]]


def password_check(
    *, door: str, username: str, client: Client, verify: Callable[[], object], user=None
):
    """Run `verify` (a password check) under the brute-force policy; its user, or None.

    Raises Throttled (429, Retry-After) without calling `verify` when the client's
    address, this identity from this address, or this identity is past its limit. Every wrong
    password is a `login_failed` event naming the door; the one that reaches the limit
    is also a `locked_out` event. `user` is the account, when the door knows it.
    """
    address = network(client.ip)
    attempts = Counter("login", address)
    attempted_so_far = attempts.add()
    if attempted_so_far > attempts.limit:
        if attempted_so_far == attempts.limit + 1:
            # The address is over its limit, whatever name it tries: no account is named.
            _locked_out(door, "", None, client, "too_many_attempts", attempts)
        raise attempts.refuse()
    who = identity(username)
    failures = Counter("login_failure", who, address)
    everywhere = Counter("username_failure", who)
    failed_so_far, failed_everywhere = failures.add(), everywhere.add()
    if failed_so_far > failures.limit or failed_everywhere > everywhere.limit:
        failures.give_back()  # refused unheard: no wrong password either
        everywhere.give_back()
        raise (failures if failed_so_far > failures.limit else everywhere).refuse()
    try:
        verified = verify()
    except BaseException:
        # No answer (e.g. the database is away): no password was checked, so none counts.
        for counter in (attempts, failures, everywhere):
            counter.give_back()
        raise
    if verified is not None:
        failures.give_back()
        everywhere.give_back()
        return verified
    account = user or _account(username)
    security_event(
        "login_failed",
        user=account,
        username=looked_up(username),
        client=client,
        reason="invalid_credentials",
        door=door,
    )
    # Exactly one request sees a count reach its limit, however many race.
    if failed_so_far == failures.limit:
        _locked_out(door, username, account, client, "too_many_failures", failures)
    elif failed_everywhere == everywhere.limit:
        _locked_out(door, username, account, client, "too_many_failures_for_username", everywhere)
    return None


def signup_check(client: Client) -> None:
    """Refuse signups past the per-address rate: each costs a hash and tells a taken name."""
    signups = Counter("signup", network(client.ip))
    if signups.add() > signups.limit:
        raise signups.refuse()


def _locked_out(door: str, username: str, user, client: Client, reason: str, counter) -> None:
    """Record that a door stays shut to this client until the counter's window ends."""
    security_event(
        "locked_out",
        user=user or (_account(username) if username else None),
        username=looked_up(username),
        client=client,
        reason=reason,
        door=door,
        seconds=counter.seconds_left,
    )


def _account(username: str):
    """The user this name signs in as, if any: the record shows whose account was tried."""
    User = get_user_model()
    return User._default_manager.filter(**{User.USERNAME_FIELD: looked_up(username)}).first()
