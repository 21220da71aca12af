"""The accounts app: sign-up, sign-in sessions and their tokens."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in sessions over SimpleJWT."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, the hooks that end sessions when a user changes,
        # and those that make each Django sign-in (the admin's) a session.
        from accounts import checks, hooks, signins  # noqa: F401
