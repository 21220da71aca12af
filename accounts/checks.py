"""System checks: the session hooks are in place and the signing key fits its algorithm."""

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


@register()
def signing_configuration(app_configs, **kwargs) -> list[Error]:
    """In production, tokens need an issuer, and a public-key algorithm an encryption key.

    Without KEY_ENCRYPTION_KEY the private signing keys would be encrypted with
    SECRET_KEY, which Django uses everywhere else too; without ISSUER no token or
    published URL could say who made it. Development (DEBUG on) has defaults for both.
    """
    from accounts.conf import app_settings

    if settings.DEBUG:
        return []
    errors = []
    if not app_settings.ISSUER:
        errors.append(
            Error(
                "ACCOUNTS['ISSUER'] is not set.",
                hint="Set it to this API's public origin, e.g. https://api.example.com.",
                id="accounts.E003",
            )
        )
    algorithm = app_settings.SIGNING_ALGORITHM
    if not algorithm.startswith("HS") and not app_settings.KEY_ENCRYPTION_KEY:
        errors.append(
            Error(
                "ACCOUNTS['KEY_ENCRYPTION_KEY'] is not set.",
                hint=f"{algorithm} keys are stored encrypted with it; set a random value of "
                "50+ characters, different from SECRET_KEY.",
                id="accounts.E004",
            )
        )
    return errors
