"""The brute-force policy: one set of limits for every door where a password is checked.

Doors: the API login, the admin login, and the old password of a password change
(API and admin). At each door the same counts apply, all in sliding windows
(accounts.windows: Redis in production, so every app server shares them):

- ``login``: password checks per client address, right or wrong;
- ``login_failure``: wrong passwords per normalized identity and client address;
- ``username_failure``: wrong passwords per normalized identity, from every address
  (guessing spread over many addresses).

An IPv6 client counts as its /64 network, which one host commonly holds whole. Past any
limit the door refuses without checking the password, so the right password waits too,
until a place frees: "5/minute" is at most five in any 60 seconds. A check claims its
places before the password is hashed, so parallel guesses cannot all slip under the
limit, and a right password gives its place back.
"""

import hashlib
import math
import unicodedata
from collections.abc import Callable

from rest_framework.exceptions import Throttled

from accounts.backends import user_by_username
from accounts.clients import Client, network
from accounts.conf import app_settings
from accounts.events import record
from accounts.models import EventKind
from accounts.windows import Claim, Window, claim, first_in_period, parse_rate

API_LOGIN = "api_login"
ADMIN_LOGIN = "admin_login"
API_PASSWORD_CHANGE = "api_password_change"
ADMIN_PASSWORD_CHANGE = "admin_password_change"


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


def window(scope: str, *parts: str | None) -> Window:
    """The window of one kind of count for one key, at the rate THROTTLE_RATES sets."""
    limit, period = parse_rate(app_settings.THROTTLE_RATES[scope])
    # Hashed: any string a client sends makes a valid, bounded key.
    digest = hashlib.sha256("\0".join(str(part) for part in parts).encode()).hexdigest()
    return Window(f"guard:{scope}:{digest}", limit, period)


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
    attempt = claim(window("login", address))
    if not attempt.granted:
        # The address is over its limit, whatever name it tries: no account is named.
        _locked_out(door, "", None, client, "too_many_attempts", attempt, 0)
        raise Throttled(wait=attempt.wait)
    who = identity(username)
    failure = claim(window("login_failure", who, address), window("username_failure", who))
    if not failure.granted:
        raise Throttled(wait=failure.wait)  # refused unheard: no wrong password either
    try:
        verified = verify()
    except BaseException:
        # No answer (e.g. the database is away): no password was checked, so none counts.
        attempt.give_back()
        failure.give_back()
        raise
    if verified is not None:
        failure.give_back()
        return verified
    account = user or _account(username)
    record(
        EventKind.LOGIN_FAILED,
        user=account,
        username=looked_up(username),
        client=client,
        reason="invalid_credentials",
        door=door,
    )
    # The wrong password that takes a window's last place shuts the door.
    if failure.full(0):
        _locked_out(door, username, account, client, "too_many_failures", failure, 0)
    elif failure.full(1):
        _locked_out(door, username, account, client, "too_many_failures_for_username", failure, 1)
    return None


def signup_check(client: Client) -> None:
    """Refuse signups past the per-address rate: each costs a hash and tells a taken name."""
    signup = claim(window("signup", network(client.ip)))
    if not signup.granted:
        raise Throttled(wait=signup.wait)


def _locked_out(
    door: str, username: str, user, client: Client, reason: str, counted: Claim, index: int
) -> None:
    """Record that a door is shut to this client until a place frees: once per period.

    However many requests race to the limit or knock while it holds, one event per
    period of the window says so.
    """
    if not first_in_period(counted.windows[index]):
        return
    record(
        EventKind.LOCKED_OUT,
        user=user or (_account(username) if username else None),
        username=looked_up(username),
        client=client,
        reason=reason,
        door=door,
        seconds=math.ceil(counted.seconds_until_free(index)),
    )


def _account(username: str):
    """The user this name signs in as, if any: the record shows whose account was tried."""
    return user_by_username(looked_up(username))
