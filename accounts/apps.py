"""The accounts app: sign-up, sign-in sessions and their tokens."""

from django.apps import AppConfig, apps


class AccountsConfig(AppConfig):
    """Sign-in sessions over SimpleJWT."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, the hooks that end sessions when a user changes, those
        # that make each Django sign-in (the admin's) a session, and those that keep a
        # username's lookalike keys.
        from accounts import checks, hooks, lookalikes, signins  # noqa: F401

        if apps.is_installed("drf_spectacular"):
            # The authentication classes' OpenAPI schemes, for projects that document with it.
            from accounts import schema  # noqa: F401
