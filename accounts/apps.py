"""The accounts app: sign-up, sign-in sessions and their tokens."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in sessions over SimpleJWT."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, the hooks that end sessions when a user changes, those
        # that make each Django sign-in (the admin's) a session, and those that keep a
        # username's lookalike keys.
        # The OpenAPI schemes of the app's authentication classes (drf-spectacular).
        from accounts import checks, hooks, lookalikes, schema, signins  # noqa: F401
