"""System checks: the hooks that end sessions must be in place, or `manage.py check` fails."""

from django.conf import settings
from django.core.checks import Error, register

PASSWORD_HOOK = "accounts.hooks.EndSessionsOnPasswordChange"


@register()
def password_change_hook(app_configs, **kwargs) -> list[Error]:
    """Without the hook, a password changed outside the API would leave sessions alive."""
    names = [validator.get("NAME") for validator in settings.AUTH_PASSWORD_VALIDATORS]
    if PASSWORD_HOOK in names:
        return []
    return [
        Error(
            f"{PASSWORD_HOOK} is missing from AUTH_PASSWORD_VALIDATORS.",
            hint="Add it back: it ends a user's sessions when the password changes outside "
            "the API (admin, changepassword, set_password + save).",
            id="accounts.E001",
        )
    ]
