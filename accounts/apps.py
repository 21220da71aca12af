"""The accounts app: sign-up, sign-in sessions and their tokens."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in sessions over SimpleJWT."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks and the hooks that end sessions when a user changes;
        # lookalikes, the hooks that keep a username's lookalike keys, and their check.
        from accounts import checks, hooks, lookalikes  # noqa: F401
