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
def signing_key(app_configs, **kwargs) -> list[Error]:
    """A weak or mismatched key pair: refused before it signs a token (or fails a login)."""
    from accounts.keys import key_problems

    jwt = settings.SIMPLE_JWT
    problems = key_problems(
        jwt.get("ALGORITHM", "HS256"), jwt.get("SIGNING_KEY") or "", jwt.get("VERIFYING_KEY") or ""
    )
    return [
        Error(problem, hint="See docs/deployment.md, 'Signing keys'.", id="accounts.E002")
        for problem in problems
    ]
