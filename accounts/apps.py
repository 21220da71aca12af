"""The accounts app: sign-up, sign-in sessions and their tokens."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


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


class AdminConfig(admin_apps.AdminConfig):
    """Django's admin, on a site whose login and password forms are rate-limited.

    Put `"accounts.apps.AdminConfig"` in INSTALLED_APPS instead of `"django.contrib.admin"`
    (Django's way of replacing the default admin site).
    """

    default = False  # "accounts" alone means AccountsConfig
    default_site = "accounts.sites.AdminSite"
