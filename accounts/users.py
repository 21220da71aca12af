"""Account writes: signing up, and changing a password (which ends other sessions)."""

from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework import serializers

from accounts.exceptions import UsernameTaken, WrongPassword
from accounts.models import RevokeReason, Session
from accounts.security_log import security_event
from accounts.services import session_revoke_all

User = get_user_model()

# Set by the API's password change: the session that survives it (ASVS 3.3.3) and
# the client's address, for the password_changed() hook that does the revoking.
_password_change_origin: ContextVar[tuple[Session | None, str | None]] = ContextVar(
    "password_change_origin", default=(None, None)
)


def user_signup(*, username: str, password: str) -> AbstractBaseUser:
    """Create a user after Django's password validators accept the password."""
    if User.objects.filter(username=username).exists():
        raise UsernameTaken()
    _validate_password(password, User(username=username), field="password")
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password)
    except IntegrityError:
        # Two signups raced past the exists() check; the unique index decided.
        raise UsernameTaken() from None


def password_change(
    *, user, session: Session, old_password: str, new_password: str, ip: str | None = None
) -> None:
    """Change the password and end every other session; the caller's survives."""
    if not user.check_password(old_password):
        raise WrongPassword()
    _validate_password(new_password, user, field="new_password")
    user.set_password(new_password)
    reset = _password_change_origin.set((session, ip))
    try:
        with transaction.atomic():
            # save() calls the validators' password_changed() hook, which revokes.
            user.save(update_fields=["password"])
    finally:
        _password_change_origin.reset(reset)


def sessions_revoke_on_password_change(user) -> None:
    """Revoke a user's sessions after a password change, except one kept by the API."""
    keep, ip = _password_change_origin.get()
    revoked = session_revoke_all(user=user, reason=RevokeReason.PASSWORD_CHANGE, keep=keep, ip=ip)
    # Only a change that touched sessions or came through the API is worth an event:
    # a new user's first password is not a change.
    if revoked or keep is not None:
        security_event(
            "password_change", user=user, sid=keep and keep.id, ip=ip, revoked_sessions=revoked
        )


def _validate_password(password: str, user, *, field: str) -> None:
    """Run Django's password validators, failing as a 400 that says why."""
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field: exc.messages}, code="invalid_password") from None
