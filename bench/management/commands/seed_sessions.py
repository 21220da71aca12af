"""`manage.py seed_sessions` (bench settings only): refresh tokens and sessions in bulk."""

from django.core.management.base import BaseCommand, CommandError

from bench.seed import seed_sessions


class Command(BaseCommand):
    help = (
        "Seed N outstanding refresh tokens as chains of rotation over M sessions of seeded "
        "users (who cannot log in). PostgreSQL: COPY into locked tables whose indexes and "
        "keys are rebuilt at the end, so never point this at a database that serves users."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tokens", type=int, default=1000, help="outstanding tokens")
        parser.add_argument("--sessions", type=int, default=200, help="sessions (0: bare tokens)")
        parser.add_argument("--users", type=int, default=None, help="default: 1 per 10 sessions")
        parser.add_argument(
            "--chain", type=int, default=None, help="tokens per chain; the rest have no session"
        )
        parser.add_argument("--expired", action="store_true", help="only expired rows")
        parser.add_argument("--events", type=int, default=0, help="security events")
        parser.add_argument(
            "--old-events", type=int, default=0, help="security events past retention"
        )
        parser.add_argument("--batch-size", type=int, default=50_000, help="tokens per batch")

    def handle(
        self, *args, tokens, sessions, users, chain, expired, events, old_events, batch_size, **_
    ):
        try:
            seeded = seed_sessions(
                tokens=tokens,
                sessions=sessions,
                users=users,
                chain=chain,
                expired=expired,
                events=events,
                old_events=old_events,
                batch_size=batch_size,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(seeded))
