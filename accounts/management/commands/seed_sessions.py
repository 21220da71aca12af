"""Seed outstanding refresh tokens and sign-in sessions in bulk, for benchmarks and admin scale."""

import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import RevokeReason, Session, SessionToken
from accounts.seed_writers import BulkWriter, CopyWriter

# One session in this many is seeded as logged out, so admin filters have both kinds.
REVOKED_EVERY = 10
SESSIONS_PER_USER = 10
TOKEN_COLUMNS = ("id", "user_id", "jti", "token", "created_at", "expires_at")
USER_AGENTS = (
    "okhttp/4.12.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
    "PostmanRuntime/7.39.0",
)


class Command(BaseCommand):
    help = (
        "Seed N outstanding refresh tokens spread over M sessions of seeded users (who "
        "cannot log in), every rotated-out token blacklisted as rotation leaves it. "
        "PostgreSQL: COPY, with the tables locked and their indexes and keys rebuilt "
        "once at the end. Other databases: batched bulk_create."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tokens", type=int, default=1000, help="outstanding tokens")
        parser.add_argument(
            "--sessions", type=int, default=200, help="sessions (0: tokens without sessions)"
        )
        parser.add_argument(
            "--users", type=int, default=None, help=f"default: one per {SESSIONS_PER_USER} sessions"
        )
        parser.add_argument(
            "--expired", action="store_true", help="seed expired sessions and tokens only"
        )
        parser.add_argument("--batch-size", type=int, default=50_000, help="tokens per batch")

    def handle(self, *args, tokens, sessions, users, expired, batch_size, **options):
        if tokens < 0 or sessions < 0 or batch_size < 1:
            raise CommandError("--tokens and --sessions must be >= 0, --batch-size >= 1.")
        if sessions > tokens:
            raise CommandError("Every session needs a token: --sessions must be <= --tokens.")
        users = max(1, -(-sessions // SESSIONS_PER_USER)) if users is None else users
        if users < 1:
            raise CommandError("--users must be >= 1.")
        started = time.perf_counter()
        writer = CopyWriter() if connection.vendor == "postgresql" else BulkWriter(batch_size)
        blacklisted = 0
        with transaction.atomic(), writer.loading():
            seeder = Seeder(writer=writer, expired=expired)
            user_ids = seeder.users(users) if tokens else []
            for standalone, chains in _batches(tokens, sessions, batch_size):
                blacklisted += seeder.batch(user_ids, standalone, chains)
        self.stdout.write(
            f"Seeded {tokens} outstanding tokens ({blacklisted} blacklisted) in {sessions} "
            f"{'expired ' if expired else ''}sessions of {len(user_ids)} users "
            f"in {time.perf_counter() - started:.1f}s."
        )


def _batches(tokens: int, sessions: int, batch_size: int) -> Iterator[tuple[int, list[int]]]:
    """Yield (standalone tokens, chain length of each session), about batch_size tokens each."""
    if sessions == 0:
        for start in range(0, tokens, batch_size):
            yield min(batch_size, tokens - start), []
        return
    base, extra = divmod(tokens, sessions)
    chains: list[int] = []
    for index in range(sessions):
        chains.append(base + (index < extra))
        if len(chains) * base >= batch_size:
            yield 0, chains
            chains = []
    if chains:
        yield 0, chains


class Seeder:
    """Builds rows as login, rotation and logout would leave them, and hands them on."""

    def __init__(self, *, writer, expired: bool):
        self.writer = writer
        self.now = timezone.now()
        self.expired = expired
        self.absolute = settings.SESSION_ABSOLUTE_LIFETIME
        self.idle = simplejwt.api_settings.REFRESH_TOKEN_LIFETIME
        self.random = random.Random()  # noqa: S311 - made-up data, not secrets
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

    def batch(self, user_ids: list[int], standalone: int, chains: list[int]) -> int:
        """Seed standalone tokens, or one session per chain length; returns blacklisted count."""
        total = standalone + sum(chains)
        token_ids = iter(self.writer.reserve_ids(OutstandingToken, total))
        # 32 hex digits of jti and 64 of fingerprint per token: the real table keeps a
        # SHA-256 of each token, never the token.
        digits_all = os.urandom(48 * total).hex()
        random_hex = (digits_all[i : i + 96] for i in range(0, 96 * total, 96))
        tokens, sessions, links, blacklist = [], [], [], []

        def issue(user_id: int, created_at, expires_at) -> tuple[int, str]:
            pk, digits = next(token_ids), next(random_hex)
            tokens.append((pk, user_id, digits[:32], digits[32:], created_at, expires_at))
            return pk, digits[:32]

        for _ in range(standalone):
            created_at = self._start(self.idle)
            issue(self.random.choice(user_ids), created_at, created_at + self.idle)
        for length in chains:
            session, chain, rotated_out = self._session(user_ids, length, issue)
            sessions.append(session)
            links.extend((pk, session["id"]) for pk in chain)
            blacklist.extend(rotated_out)

        self.writer.write(OutstandingToken, TOKEN_COLUMNS, tokens)
        self.writer.write_dicts(Session, sessions)
        self.writer.write(SessionToken, ("token_id", "session_id"), links)
        self.writer.write(BlacklistedToken, ("token_id", "blacklisted_at"), blacklist)
        return len(blacklist)

    def _start(self, span: timedelta):
        """A start time: within the last `span` (live), or long enough ago that all expired."""
        if self.expired:
            return self.now - self.absolute - span - timedelta(days=1 + self.random.random())
        return self.now - span * 0.9 * self.random.random()

    def _session(self, user_ids: list[int], length: int, issue) -> tuple[dict, list, list]:
        """One session, the ids of its token chain, and its (token id, blacklisted at) rows."""
        self.sessions_seeded += 1
        created_at = self._start(min(self.idle, self.absolute))
        expires_at = created_at + self.absolute
        user_id = self.random.choice(user_ids)
        last_use = expires_at if self.expired else min(self.now, expires_at)
        step = (last_use - created_at) / length
        chain = []  # (pk, jti, issued at), oldest first
        for index in range(length):
            issued = created_at + step * index
            chain.append((*issue(user_id, issued, min(issued + self.idle, expires_at)), issued))
        current = chain[-1]
        previous = chain[-2] if length > 1 else (None, "", None)
        revoked = self.sessions_seeded % REVOKED_EVERY == 0
        # Rotation blacklists the token it replaces; logout blacklists the current one too.
        rotated_out = [(pk, chain[i + 1][2]) for i, (pk, _, _) in enumerate(chain[:-1])]
        if revoked:
            rotated_out.append((current[0], current[2]))
        session = {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "created_at": created_at,
            "last_refreshed_at": current[2] if length > 1 else None,
            "expires_at": expires_at,
            "ip_address": f"10.{self.random.randrange(256)}.{self.random.randrange(256)}.1",
            "user_agent": self.random.choice(USER_AGENTS),
            # Both ways a session may name its current token; the writer keeps the
            # fields the model has.
            "current_token_id": current[0],
            "current_jti": current[1],
            "previous_token_id": previous[0],
            "previous_jti": previous[1],
            "revoked_at": current[2] if revoked else None,
            "revoked_reason": RevokeReason.LOGOUT if revoked else "",
        }
        return session, [pk for pk, _, _ in chain], rotated_out
