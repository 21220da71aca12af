"""Account writes, and the two hooks that end a user's sessions however the user changes.

A password change and a deactivation each end every session of the user, through
one hook each, whatever made the change: this API, the admin's forms and actions,
`manage.py changepassword`, or `save()` from code. `QuerySet.update()` and raw SQL
bypass both hooks, as they bypass every model hook.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import (
    get_default_password_validators,
    password_changed,
    validate_password,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models.signals import pre_save
from django.dispatch import receiver
from rest_framework import serializers

from accounts.clients import Client
from accounts.events import security_event
from accounts.exceptions import UsernameTaken, WrongPassword
from accounts.guard import API_PASSWORD_CHANGE, password_check, signup_check
from accounts.models import RevokeReason, Session
from accounts.services import session_revoke_all

User = get_user_model()


def user_signup(*, username: str, password: str, client: Client):
    """Create a user after the signup rate and Django's password validators allow it."""
    signup_check(client)
    if User.objects.filter(username=username).exists():
        raise UsernameTaken()
    _validate_password(password, User(username=username), field="password")
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password)
            security_event("signup", user=user, client=client)
    except IntegrityError:
        # Two signups raced past the exists() check; the unique index decided.
        raise UsernameTaken() from None
    return user


def password_change(
    *, user, session: Session, old_password: str, new_password: str, client: Client
) -> int:
    """Change the password and end every other session of the user; returns how many.

    The old password is checked under the brute-force policy, like a login. The
    caller's session survives (ASVS 3.3.3: the user chose to stay signed in here).
    """
    verified = password_check(
        door=API_PASSWORD_CHANGE,
        username=user.get_username(),
        client=client,
        verify=lambda: user if user.check_password(old_password) else None,
        user=user,
    )
    if verified is None:
        raise WrongPassword()
    _validate_password(new_password, user, field="new_password")
    with transaction.atomic():
        # Not set_password(): then save() would call every validator's password_changed(),
        # and the session hook among them ends all sessions, this one too. This path ends
        # the others itself, and tells the remaining validators below.
        user.password = make_password(new_password)
        user.save(update_fields=["password"])
        revoked = sessions_end_for_password_change(user=user, keep=session, client=client)
    others = [
        validator
        for validator in get_default_password_validators()
        if not isinstance(validator, EndSessionsOnPasswordChange)
    ]
    password_changed(new_password, user, password_validators=others)
    return revoked


def sessions_end_for_password_change(
    *, user, keep: Session | None = None, client: Client | None = None
) -> int:
    """End the user's sessions (but `keep`) after a password change, with its event."""
    with transaction.atomic():
        revoked = session_revoke_all(
            user=user, reason=RevokeReason.PASSWORD_CHANGE, keep=keep, client=client
        )
        security_event(
            "password_changed",
            user=user,
            sid=keep.id if keep else None,
            client=client,
            revoked_sessions=revoked,
        )
    return revoked


class EndSessionsOnPasswordChange:
    """The password-change hook: a password "validator" that enforces no rule.

    Django calls every validator's password_changed() after a save() that follows
    set_password(): the admin's password forms, `changepassword`, and plain code
    alike. accounts.checks fails `manage.py check` if this is not configured.
    """

    def validate(self, password, user=None) -> None:
        """Accept every password."""

    def password_changed(self, password, user=None) -> None:
        """End every session of the user."""
        if user is not None:
            sessions_end_for_password_change(user=user)

    def get_help_text(self) -> str:
        return "Changing your password signs you out of every other session."


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.end_on_deactivation")
def end_sessions_on_deactivation(sender, instance, raw=False, update_fields=None, **kwargs):
    """The deactivation hook: turning is_active off ends every session of the user, for good.

    Sessions are revoked (a timestamp), so reactivating the user revives none. The
    check costs one query, and only when an inactive user is saved.
    """
    if raw or instance.is_active or instance.pk is None:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    if not sender._default_manager.filter(pk=instance.pk, is_active=True).exists():
        return  # already inactive: nothing new to end
    with transaction.atomic():
        revoked = session_revoke_all(user=instance, reason=RevokeReason.USER_DEACTIVATED)
        security_event("user_deactivated", user=instance, revoked_sessions=revoked)


def _validate_password(password: str, user, *, field: str) -> None:
    """Run Django's password validators, failing as a 400 that says why."""
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field: exc.messages}, code="invalid_password") from None
