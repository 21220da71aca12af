"""The project's configuration of Django's admin."""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Django's admin, served by the accounts app's rate-limited site."""

    default_site = "accounts.sites.AdminSite"
