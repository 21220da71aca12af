"""System checks: the session hooks are in place and the signing key fits its algorithm."""

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
                id="accounts.E002",
            )
        )
    algorithm = app_settings.SIGNING_ALGORITHM
    if not algorithm.startswith("HS") and not app_settings.KEY_ENCRYPTION_KEY:
        errors.append(
            Error(
                "ACCOUNTS['KEY_ENCRYPTION_KEY'] is not set.",
                hint=f"{algorithm} keys are stored encrypted with it; set a random value of "
                "50+ characters, different from SECRET_KEY.",
                id="accounts.E003",
            )
        )
    return errors
