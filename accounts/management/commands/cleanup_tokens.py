"""`manage.py cleanup_tokens`: delete what has expired, for cron."""

from django.core.management.base import BaseCommand, CommandError

from accounts.cleanup import BATCH_SIZE, clear_expired
from accounts.conf import app_settings


class Command(BaseCommand):
    help = (
        "Delete sessions past their absolute expiry, refresh tokens past theirs and security "
        "events past SECURITY_EVENT_RETENTION_DAYS, and sent session events past "
        "PUSHED_EVENT_RETENTION_DAYS, in batches. Revoked sessions are kept until they expire."
    )
    # A cron job: `check` and `migrate` check the project; importing every URL and view
    # for the checks here would cost a fifth of this command's memory and a second of time.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help="rows per transaction"
        )

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        counts = clear_expired(batch_size=batch_size)
        self.stdout.write(
            f"Deleted {counts.sessions} expired sessions, {counts.outstanding_tokens} expired "
            f"refresh tokens ({counts.blacklisted_tokens} of them blacklisted) and "
            f"{counts.security_events} security events older than "
            f"{app_settings.SECURITY_EVENT_RETENTION_DAYS} days and {counts.pushed_events} sent "
            f"session events, in {counts.batches} batches."
        )
        if counts.unsent_notices:
            self.stdout.write(
                f"{counts.unsent_notices} ended sessions were never told to resource servers "
                f"within {app_settings.PUSHED_EVENT_RETENTION_DAYS} days: is the event worker "
                "running? (see docs/deployment.md)"
            )
