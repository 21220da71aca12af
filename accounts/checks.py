"""System checks: the session hooks are in place, and production has what signing needs.

A project that installs the app and sets nothing more runs (startproject, the app in
INSTALLED_APPS, its URLs, its authentication class): the hooks a project adds to its own
settings are warnings when missing, saying what is lost without them. This project's
suite runs `check --deploy --fail-level WARNING` (tests/test_settings.py), so here they
are required.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

PASSWORD_HOOK = "accounts.hooks.EndSessionsOnPasswordChange"
SIGN_IN_MIDDLEWARE = "accounts.signins.SignInSessionMiddleware"
AUTHENTICATION_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


@register()
def password_change_hook(app_configs, **kwargs) -> list[Warning]:
    """Without the hook, a password changed by code would leave the user's sessions alive."""
    names = [validator.get("NAME") for validator in settings.AUTH_PASSWORD_VALIDATORS]
    if PASSWORD_HOOK in names:
        return []
    return [
        Warning(
            f"{PASSWORD_HOOK} is not in AUTH_PASSWORD_VALIDATORS.",
            hint="Add it: a password set outside the API and the admin (`manage.py "
            "changepassword`, set_password() and save() from code) then ends the user's "
            "sessions too.",
            id="accounts.W002",
        )
    ]


@register()
def sign_in_middleware(app_configs, **kwargs) -> list[Error | Warning]:
    """Without the middleware, ending a user's sessions would leave their admin signed in."""
    middleware = list(settings.MIDDLEWARE)
    if SIGN_IN_MIDDLEWARE not in middleware:
        return [
            Warning(
                f"{SIGN_IN_MIDDLEWARE} is not in MIDDLEWARE.",
                hint=f"Add it after {AUTHENTICATION_MIDDLEWARE}: it signs out an admin "
                "browser whose session was ended (logout-all, a password change, a "
                "deactivation, the admin's revoke actions).",
                id="accounts.W003",
            )
        ]
    if AUTHENTICATION_MIDDLEWARE not in middleware or middleware.index(
        AUTHENTICATION_MIDDLEWARE
    ) > middleware.index(SIGN_IN_MIDDLEWARE):
        return [
            Error(
                f"{SIGN_IN_MIDDLEWARE} must come after {AUTHENTICATION_MIDDLEWARE}.",
                hint="It reads request.user, which the authentication middleware sets.",
                id="accounts.E002",
            )
        ]
    return []


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
    if not getattr(settings, "ACCOUNTS", {}).get("ISSUER"):
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


@register(Tags.database)
def signing_key_opens(app_configs, databases=None, **kwargs) -> list[Error]:
    """The active signing key opens with KEY_ENCRYPTION_KEY (`check --database default`)."""
    from django.db import DatabaseError

    from accounts.conf import app_settings
    from accounts.keys import UndecryptableKey, decrypt
    from accounts.models import KeyState, SigningKey, key_encryption_keys

    if not databases or app_settings.SIGNING_ALGORITHM.startswith("HS"):
        return []
    try:
        active = SigningKey.objects.filter(state=KeyState.ACTIVE).first()
        if active is not None:
            decrypt(active.encrypted_private_key, key_encryption_keys())
    except UndecryptableKey:
        return [
            Error(
                f"The active signing key ({active.kid}) does not open with KEY_ENCRYPTION_KEY "
                "or KEY_ENCRYPTION_KEY_FALLBACKS.",
                hint="Put the key it was encrypted with back in KEY_ENCRYPTION_KEY, or list it "
                "in KEY_ENCRYPTION_KEY_FALLBACKS: until then no token can be signed.",
                id="accounts.E005",
            )
        ]
    except DatabaseError:
        return []  # no table yet (before migrate), or no database: other checks say so
    return []
