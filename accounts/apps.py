"""The accounts app: sign-up, sign-in sessions and their tokens."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in sessions over SimpleJWT."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks and the hook that ends sessions on deactivation.
        from accounts import checks, users  # noqa: F401
