"""Account writes through the API: signing up, and changing a password."""

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import (
    get_default_password_validators,
    password_changed,
    validate_password,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework import serializers

from accounts.clients import Client
from accounts.events import security_event
from accounts.exceptions import UsernameTaken, WrongPassword
from accounts.guard import API_PASSWORD_CHANGE, password_check, signup_check
from accounts.hooks import EndSessionsOnPasswordChange, changed_by, end_sessions
from accounts.lookalikes import lookalike_taken
from accounts.models import RevokeReason, Session

User = get_user_model()


def user_signup(*, username: str, password: str, client: Client):
    """Create a user after the signup rate and Django's password validators allow it.

    A name that is taken, or a lookalike of one (accounts.lookalikes), is refused.
    """
    signup_check(client)
    # One answer for the name and its lookalikes, so it tells no one which one exists.
    if lookalike_taken(username):
        raise UsernameTaken()
    _validate_password(password, User(username=username), field="password")
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password)
            security_event("signup", user=user, client=client)
    except IntegrityError:
        # Two signups of one name or of lookalikes raced past the check above; a unique
        # index (the username's, or a lookalike key's) decided.
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
    return password_set(user=user, password=new_password, keep=session, client=client)


def password_set(*, user, password: str, keep: Session | None, client: Client) -> int:
    """Save a new, validated password and end every session of the user but `keep`.

    For a user changing their own password where they are signed in (the API, the
    admin's "change my password"): that sign-in survives, every other one ends.
    """
    with transaction.atomic():
        # Not set_password(): then save() would call every validator's password_changed(),
        # and the session hook among them ends all sessions, this one too. This path ends
        # the others itself, and tells the remaining validators below (accounts.hooks).
        user.password = make_password(password)
        user.save(update_fields=["password"])
        changed_by(user, client=client)
        revoked = end_sessions(
            user=user, reason=RevokeReason.PASSWORD_CHANGE, event="password_changed", keep=keep
        )
    others = [
        validator
        for validator in get_default_password_validators()
        if not isinstance(validator, EndSessionsOnPasswordChange)
    ]
    password_changed(password, user, password_validators=others)
    return revoked


def _validate_password(password: str, user, *, field: str) -> None:
    """Run Django's password validators, failing as a 400 that says why."""
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field: exc.messages}, code="invalid_password") from None
