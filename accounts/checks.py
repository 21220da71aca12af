"""System checks: the hooks that end sessions must be in place, or `manage.py check` fails."""

from django.conf import settings
from django.core.checks import Error, register

PASSWORD_HOOK = "accounts.hooks.EndSessionsOnPasswordChange"
SIGN_IN_MIDDLEWARE = "accounts.signins.SignInSessionMiddleware"
AUTHENTICATION_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


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


@register()
def sign_in_middleware(app_configs, **kwargs) -> list[Error]:
    """Without the middleware, ending a user's sessions would leave their admin signed in."""
    middleware = list(settings.MIDDLEWARE)
    if (
        SIGN_IN_MIDDLEWARE in middleware
        and AUTHENTICATION_MIDDLEWARE in middleware
        and middleware.index(AUTHENTICATION_MIDDLEWARE) < middleware.index(SIGN_IN_MIDDLEWARE)
    ):
        return []
    return [
        Error(
            f"{SIGN_IN_MIDDLEWARE} must be in MIDDLEWARE, after {AUTHENTICATION_MIDDLEWARE}.",
            hint="Put it back: it signs out an admin browser whose session was revoked "
            "(logout-all, a password change, a deactivation, the admin's revoke actions).",
            id="accounts.E002",
        )
    ]
