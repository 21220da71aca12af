"""`manage.py lookalike_usernames`: the accounts whose names differ only in looks."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts import lookalikes
from accounts.models import UsernameSkeleton


class Command(BaseCommand):
    help = (
        "List groups of accounts whose usernames differ only by case or by characters that "
        "look alike (made before such names were refused). Each name is shown as typed and "
        "escaped, so the lookalikes can be told apart. --fill first gives their keys to "
        "accounts saved around the model (bulk_create, raw SQL)."
    )
    requires_system_checks = []  # the check of unkeyed users would say what this says

    def add_arguments(self, parser):
        parser.add_argument(
            "--fill", action="store_true", help="key accounts that have no lookalike first"
        )

    def handle(self, *args, fill: bool = False, **options):
        if fill:
            users = get_user_model()._default_manager
            keyed = lookalikes.fill(users, UsernameSkeleton.objects)
            self.stdout.write(f"Keyed {keyed} accounts.")
        groups = lookalikes.lookalike_groups()
        for group in groups:
            names = ", ".join(
                f"{user.get_username()} {user.get_username()!a} (id {user.pk})" for user in group
            )
            self.stdout.write(names)
        noun = "group" if len(groups) == 1 else "groups"
        self.stdout.write(f"{len(groups)} {noun} of lookalike usernames.")
