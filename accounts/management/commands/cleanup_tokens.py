"""`manage.py cleanup_tokens`: delete expired sessions and refresh tokens, for cron."""

from django.core.management.base import BaseCommand, CommandError

from accounts.cleanup import clear_expired


class Command(BaseCommand):
    help = (
        "Delete sessions past their absolute expiry and refresh tokens past theirs, "
        "in batches. Revoked sessions are kept until they expire."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per transaction")

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        counts = clear_expired(batch_size=batch_size)
        self.stdout.write(
            f"Deleted {counts.sessions} expired sessions and {counts.outstanding_tokens} "
            f"expired refresh tokens ({counts.blacklisted_tokens} of them blacklisted) "
            f"in {counts.batches} batches."
        )
