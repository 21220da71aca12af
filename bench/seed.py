"""Refresh tokens and sign-in sessions in bulk, shaped as login and rotation leave them."""

import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import connection, transaction
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.conf import app_settings
from accounts.devices import device_label
from accounts.models import EventKind, RevokeReason, SecurityEvent, Session, SessionToken
from bench.seed_writers import BulkWriter, CopyWriter

# One session in this many is seeded as logged out, so admin filters have both kinds.
REVOKED_EVERY = 10
SESSIONS_PER_USER = 10
TOKEN_COLUMNS = ("id", "user_id", "jti", "token", "created_at", "expires_at")
USER_AGENTS = (
    "okhttp/4.12.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
    "PostmanRuntime/7.39.0",
)


# The security record as a busy service writes it: mostly sign-ins and wrong passwords.
EVENT_KINDS = (
    (EventKind.LOGIN, 60),
    (EventKind.LOGIN_FAILED, 25),
    (EventKind.SESSION_REVOKED, 10),
    (EventKind.REFRESH_REPLAYED, 3),
    (EventKind.LOCKED_OUT, 1),
    (EventKind.REUSE_DETECTED, 1),
)
# Within retention, so cleanup leaves them be.
EVENTS_WITHIN = timedelta(days=60)
# How far past retention the old events go: a cleanup that did not run for a while.
OLD_EVENTS_SPAN = timedelta(days=30)


@dataclass
class Seeded:
    """What one seeding wrote."""

    tokens: int = 0
    blacklisted: int = 0
    sessions: int = 0
    users: int = 0
    events: int = 0
    old_events: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"Seeded {self.tokens} outstanding tokens ({self.blacklisted} blacklisted) in "
            f"{self.sessions} sessions of {self.users} users, and {self.events} security "
            f"events ({self.old_events} past retention), in {self.seconds:.1f}s."
        )


def seed_sessions(
    *,
    tokens: int,
    sessions: int,
    users: int | None = None,
    chain: int | None = None,
    expired: bool = False,
    events: int = 0,
    old_events: int = 0,
    batch_size: int = 50_000,
) -> Seeded:
    """Seed `tokens` refresh tokens as chains (one login and its rotations).

    Without `chain`, the tokens are spread over `sessions` chains, one per session
    (with no sessions: bare tokens). With `chain`, each session gets `chain` tokens and
    the rest are chains of that length without a session, as stock SimpleJWT leaves
    them. Every rotated-out token is blacklisted. `events` security events of the seeded
    users go with them, all of the last 60 days, after `old_events` older than
    SECURITY_EVENT_RETENTION_DAYS (for cleanup to delete). PostgreSQL loads with COPY into
    locked tables (see CopyWriter); other databases with batched bulk_create.
    """
    if min(tokens, sessions, events, old_events) < 0:
        raise ValueError("tokens, sessions and events must be >= 0")
    if batch_size < 1 or (chain is not None and chain < 1):
        raise ValueError("batch_size and chain must be >= 1")
    if sessions * (chain or 1) > tokens:
        raise ValueError("every session needs its tokens: sessions * chain must be <= tokens")
    users = max(1, -(-sessions // SESSIONS_PER_USER)) if users is None else users
    if users < 1:
        raise ValueError("users must be >= 1")
    started = time.perf_counter()
    writer = CopyWriter() if connection.vendor == "postgresql" else BulkWriter(batch_size)
    seeded = Seeded()
    with transaction.atomic(), writer.loading():
        seeder = Seeder(writer=writer, expired=expired)
        user_ids = seeder.users(users) if tokens else []
        for batch in _batches(_chains(tokens, sessions, chain), batch_size):
            seeder.batch(user_ids, batch, seeded)
        # The old ones first, as time wrote them: lower ids than every recent one.
        for start in range(0, old_events, batch_size):
            count = min(batch_size, old_events - start)
            seeded.old_events += seeder.events(user_ids, count, past_retention=True)
        for start in range(0, events, batch_size):
            seeded.events += seeder.events(user_ids, min(batch_size, events - start))
    seeded.users = len(user_ids)
    seeded.seconds = time.perf_counter() - started
    return seeded


def _chains(tokens: int, sessions: int, chain: int | None) -> Iterator[tuple[int, bool]]:
    """(length, has a session) of each refresh chain to seed."""
    if chain is None:
        if sessions == 0:
            yield from ((1, False) for _ in range(tokens))
            return
        base, extra = divmod(tokens, sessions)
        yield from ((base + (index < extra), True) for index in range(sessions))
        return
    yield from ((chain, True) for _ in range(sessions))
    for start in range(sessions * chain, tokens, chain):
        yield min(chain, tokens - start), False


def _batches(chains: Iterator[tuple[int, bool]], batch_size: int) -> Iterator[list]:
    """The chains in groups of about `batch_size` tokens."""
    batch, size = [], 0
    for length, has_session in chains:
        batch.append((length, has_session))
        size += length
        if size >= batch_size:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class Seeder:
    """Builds rows as login, rotation and logout would leave them, and hands them on."""

    def __init__(self, *, writer, expired: bool):
        self.writer = writer
        self.now = timezone.now()
        self.expired = expired
        self.absolute = settings.ACCOUNTS["SESSION_ABSOLUTE_LIFETIME"]
        self.idle = simplejwt.api_settings.REFRESH_TOKEN_LIFETIME
        self.random = random.Random()  # made-up data, not secrets
        self.sessions_seeded = 0

    def users(self, count: int) -> list[int]:
        """Create `count` users with unusable passwords; returns their ids."""
        User = get_user_model()
        ids = self.writer.reserve_ids(User, count)
        prefix = uuid.uuid4().hex[:8]
        self.writer.write_dicts(
            User,
            (
                {
                    "id": pk,
                    "password": UNUSABLE_PASSWORD_PREFIX + uuid.uuid4().hex,
                    "username": f"seed-{prefix}-{index}",
                    "date_joined": self.now,
                }
                for index, pk in enumerate(ids)
            ),
        )
        return ids

    def batch(self, user_ids: list[int], chains: list[tuple[int, bool]], seeded: Seeded) -> None:
        """Seed one batch of chains, each with its session or without; counts into `seeded`."""
        total = sum(length for length, _ in chains)
        token_ids = iter(self.writer.reserve_ids(OutstandingToken, total))
        # 32 hex digits of jti and 64 of fingerprint per token: the real table keeps a
        # SHA-256 of each token, never the token.
        digits_all = os.urandom(48 * total).hex()
        random_hex = (digits_all[i : i + 96] for i in range(0, 96 * total, 96))
        tokens, sessions, links, blacklist = [], [], [], []
        for length, has_session in chains:
            user_id = self.random.choice(user_ids)
            created_at = self._start(min(self.idle, self.absolute))
            expires_at = created_at + self.absolute
            last_use = expires_at if self.expired else min(self.now, expires_at)
            step = (last_use - created_at) / length
            chain = []  # (pk, jti, issued at, expires at), oldest first
            for index in range(length):
                issued = created_at + step * index
                pk, digits = next(token_ids), next(random_hex)
                expiry = min(issued + self.idle, expires_at)
                tokens.append((pk, user_id, digits[:32], digits[32:], issued, expiry))
                chain.append((pk, digits[:32], issued, expiry))
            # Rotation blacklists the token it replaces.
            blacklist.extend((pk, chain[i + 1][2]) for i, (pk, *_) in enumerate(chain[:-1]))
            if has_session:
                session = self._session(user_id, created_at, expires_at, chain, blacklist)
                sessions.append(session)
                links.extend((pk, session["id"]) for pk, *_ in chain)
        self.writer.write(OutstandingToken, TOKEN_COLUMNS, tokens)
        self.writer.write_dicts(Session, sessions)
        self.writer.write(SessionToken, ("token_id", "session_id"), links)
        self.writer.write(BlacklistedToken, ("token_id", "blacklisted_at"), blacklist)
        seeded.tokens += total
        seeded.sessions += len(sessions)
        seeded.blacklisted += len(blacklist)

    def events(self, user_ids: list[int], count: int, *, past_retention: bool = False) -> int:
        """Seed `count` security events of the given users; returns how many. Within the
        last 60 days, or up to OLD_EVENTS_SPAN past SECURITY_EVENT_RETENTION_DAYS."""
        kinds, weights = zip(*EVENT_KINDS, strict=True)
        retention = timedelta(days=app_settings.SECURITY_EVENT_RETENTION_DAYS)
        newest, span = (
            (self.now - retention - timedelta(days=1), OLD_EVENTS_SPAN)
            if past_retention
            else (self.now, EVENTS_WITHIN)
        )
        rows = []
        for pk, kind in zip(
            self.writer.reserve_ids(SecurityEvent, count),
            self.random.choices(kinds, weights, k=count),
            strict=True,
        ):
            user_id = self.random.choice(user_ids)
            user_agent = self.random.choice(USER_AGENTS)
            rows.append(
                {
                    "id": pk,
                    "kind": kind,
                    "created_at": newest - span * self.random.random(),
                    "user_id": user_id,
                    "username": f"seed-user-{user_id}",
                    "session_id": uuid.uuid4() if kind != EventKind.LOGIN_FAILED else None,
                    "ip_address": f"10.{self.random.randrange(256)}.{self.random.randrange(256)}.1",
                    "user_agent": user_agent,
                    "device": device_label(user_agent),
                    "details": {"door": "api_login"} if kind == EventKind.LOGIN_FAILED else {},
                }
            )
        self.writer.write_dicts(SecurityEvent, rows)
        return count

    def _start(self, span: timedelta):
        """A start time: within the last `span` (live), or long enough ago that all expired."""
        if self.expired:
            return self.now - self.absolute - span - timedelta(days=1 + self.random.random())
        return self.now - span * 0.9 * self.random.random()

    def _session(self, user_id, created_at, expires_at, chain, blacklist) -> dict:
        """The session row of one chain; logging out blacklists its current token too."""
        self.sessions_seeded += 1
        current = chain[-1]
        revoked = self.sessions_seeded % REVOKED_EVERY == 0
        if revoked:
            blacklist.append((current[0], current[2]))
        return {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "created_at": created_at,
            "last_refreshed_at": current[2] if len(chain) > 1 else None,
            "expires_at": expires_at,
            # The current refresh token's expiry, as login and each rotation set it.
            "idle_expires_at": current[3],
            "ip_address": f"10.{self.random.randrange(256)}.{self.random.randrange(256)}.1",
            "user_agent": self.random.choice(USER_AGENTS),
            "current_token_id": current[0],
            "current_jti": current[1],
            "previous_jti": chain[-2][1] if len(chain) > 1 else "",
            "revoked_at": current[2] if revoked else None,
            "revoked_reason": RevokeReason.LOGOUT if revoked else "",
        }
