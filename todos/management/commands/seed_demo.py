"""Create the lesson's demo user, its todos, and a development superuser (DEBUG only)."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError

from accounts.conf import app_settings
from accounts.keyring import key_ring
from todos.models import Todo

DEMO_USERNAME = "testuser"
DEMO_PASSWORD = "testpass123"  # The lesson's published demo login; development only.
DEMO_TODOS = (
    ("Buy groceries", False),
    ("Call mom", True),
    ("Finish project report", False),
    ("Workout", True),
)
SUPERUSER_USERNAME = "admin"
SUPERUSER_FILE = Path(settings.BASE_DIR) / ".dev-superuser"


class Command(BaseCommand):
    help = "Ensure the demo user, its four todos and a dev superuser exist (DEBUG only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates known logins and runs only with DEBUG on.")
        User = get_user_model()
        # Created with its password: a new user's first password is no password change.
        demo, created = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"password": make_password(DEMO_PASSWORD)}
        )
        if not created and not demo.check_password(DEMO_PASSWORD):
            demo.set_password(DEMO_PASSWORD)
            demo.save()
        if not demo.todos.exists():
            Todo.objects.bulk_create(
                Todo(owner=demo, title=title, done=done) for title, done in DEMO_TODOS
            )
        password = self._superuser_password(User)
        signing = self._signing_key()
        self.stdout.write(
            f"{signing}\n"
            f"Demo API user: {DEMO_USERNAME} / {DEMO_PASSWORD}\n"
            f"Admin: http://localhost:8000/admin/  user {SUPERUSER_USERNAME} / {password}\n"
            f"(admin password kept in {SUPERUSER_FILE.name}, which git ignores)"
        )

    def _signing_key(self) -> str:
        """Make the development signing key once (as the first login would) and name it."""
        if app_settings.SIGNING_ALGORITHM.startswith("HS"):
            return f"Tokens: {app_settings.SIGNING_ALGORITHM} with JWT_SIGNING_KEY"
        key = key_ring.signing()
        return (
            f"Tokens: {key.algorithm}, key {key.kid} (kept encrypted in the git-ignored "
            f"database); JWKS at {app_settings.ISSUER}/.well-known/jwks.json"
        )

    def _superuser_password(self, User) -> str:
        """Reuse the password in the untracked file, or generate one."""
        password = (
            SUPERUSER_FILE.read_text().strip()
            if SUPERUSER_FILE.exists()
            else secrets.token_urlsafe(12)
        )
        SUPERUSER_FILE.write_text(password + "\n")
        SUPERUSER_FILE.chmod(0o600)
        admin, created = User.objects.get_or_create(
            username=SUPERUSER_USERNAME,
            defaults={
                "is_staff": True,
                "is_superuser": True,
                "password": make_password(password),
            },
        )
        if not created and not admin.check_password(password):
            admin.set_password(password)
            admin.is_staff = admin.is_superuser = True
            admin.save()
        return password
