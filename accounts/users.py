"""Account writes: signing up, and the changes that end a user's sessions.

A password set or disabled, or a deactivation, made here ends every session of the user
(but the caller's own, where they keep it) and names who did it (`by`, an argument).
The same changes made any other way (`save()` from code, `manage.py changepassword`)
are caught by accounts.hooks, which come back here without an actor.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import (
    get_default_password_validators,
    password_changed,
    validate_password,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import serializers

from accounts import push
from accounts.clients import Client
from accounts.events import record
from accounts.exceptions import UsernameTaken, WrongPassword
from accounts.guard import API_PASSWORD_CHANGE, password_check, signup_check
from accounts.lookalikes import lookalike_taken
from accounts.models import EventKind, RevokeReason, Session

User = get_user_model()

# The account change each kind of event records, and the reason its sessions end.
ENDS_SESSIONS = {
    EventKind.PASSWORD_CHANGED: RevokeReason.PASSWORD_CHANGE,
    EventKind.USER_DEACTIVATED: RevokeReason.USER_DEACTIVATED,
}


def sign_up(*, username: str, password: str, client: Client):
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
            record(EventKind.SIGNUP, user=user, client=client)
    except IntegrityError:
        # Two signups of one name or of lookalikes raced past the check above; a unique
        # index (the username's, or a lookalike key's) decided.
        raise UsernameTaken() from None
    return user


def change_password(
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
    return set_password(user=user, password=new_password, keep=session, client=client)


def set_password(
    *, user, password: str, keep: Session | None = None, by=None, client: Client | None = None
) -> int:
    """Save a new, validated password and end every session of the user but `keep`.

    `keep` is the caller's own sign-in, where a user changes their own password (the
    API, the admin's "change my password"): it survives, every other session ends.
    `by` is the staff user who set someone else's password. Returns how many ended.
    """
    with transaction.atomic():
        # Not set_password(): save() would then call every validator's password_changed(),
        # the session hook among them, which ends every session with no actor. Here the
        # sessions end below, and the other validators are told after.
        user.password = make_password(password)
        user.save(update_fields=["password"])
        ended = account_changed(
            user=user, kind=EventKind.PASSWORD_CHANGED, keep=keep, by=by, client=client
        )
    from accounts.hooks import EndSessionsOnPasswordChange

    others = [
        validator
        for validator in get_default_password_validators()
        if not isinstance(validator, EndSessionsOnPasswordChange)
    ]
    password_changed(password, user, password_validators=others)
    return ended


def disable_password(*, user, by=None, client: Client | None = None) -> int:
    """Make the password unusable (no password sign-in any more) and end every session."""
    with transaction.atomic():
        unusable = make_password(None)
        # A row update: the save hooks would end the sessions without naming `by`.
        type(user)._default_manager.filter(pk=user.pk).update(password=unusable)
        user.password = unusable
        return account_changed(
            user=user,
            kind=EventKind.PASSWORD_CHANGED,
            by=by,
            client=client,
            password_disabled=True,
        )


def deactivate(*, user, by=None, client: Client | None = None) -> int:
    """Turn the user's `is_active` off and end every session for good; returns how many."""
    with transaction.atomic():
        # A row update: the save hooks would end the sessions without naming `by`.
        changed = type(user)._default_manager.filter(pk=user.pk, is_active=True)
        changed = changed.update(is_active=False)
        user.is_active = False
        if not changed:
            return 0  # already inactive: its sessions ended when it was deactivated
        return account_changed(user=user, kind=EventKind.USER_DEACTIVATED, by=by, client=client)


def account_changed(
    *,
    user,
    kind: EventKind,
    keep: Session | None = None,
    by=None,
    client: Client | None = None,
    **details,
) -> int:
    """End every session of `user` (but `keep`) for an account change, and record the change.

    In the caller's transaction (or its own): the change, the revocations and the
    events commit together. Returns how many sessions ended.
    """
    sessions = Session.objects.filter(user=user)
    if keep is not None:
        sessions = sessions.exclude(pk=keep.pk)
    with transaction.atomic():
        ended = sessions.revoke(ENDS_SESSIONS[kind], by=by, client=client)
        if kind == EventKind.PASSWORD_CHANGED:
            push.credential_changed(user, by=by, now=timezone.now())
        record(
            kind,
            user=user,
            sid=keep.id if keep else None,
            client=client,
            actor=by,
            revoked_sessions=ended,
            **details,
        )
    return ended


def _validate_password(password: str, user, *, field: str) -> None:
    """Run Django's password validators, failing as a 400 that says why."""
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field: exc.messages}, code="invalid_password") from None
