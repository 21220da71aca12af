"""The hooks that end a user's sessions, however the user changes.

A new password, a password made unusable and a deactivation each end every session of
the user, whatever made the change: the admin's forms and actions, `manage.py
changepassword`, or `save()` from code. Sessions are revoked (a timestamp), so
reactivating a user or restoring a password revives none of them. `QuerySet.update()`
and raw SQL bypass these hooks, as they bypass every model hook.

- `set_password()` then `save()`: Django calls each password validator's
  `password_changed()`; EndSessionsOnPasswordChange is that hook (accounts.checks fails
  `manage.py check` without it). A hash upgraded at login is no change, and Django
  does not call it then.
- `set_unusable_password()` and turning `is_active` off: the save's own hooks compare
  the row before and after.

The API's own password change keeps the caller's session and ends the others itself
(accounts.users.password_change).
"""

from django.conf import settings
from django.contrib.auth.hashers import is_password_usable
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts.clients import Client
from accounts.events import security_event
from accounts.models import RevokeReason, Session
from accounts.services import session_revoke_all

# What a save's pre_save hook read of the row, for its post_save hook and the validator.
BEFORE_SAVE = "_sessions_before_save"
# Who is changing the user (accounts.admin sets it), for the security record.
CHANGED_BY = "_sessions_changed_by"
WATCHED_FIELDS = frozenset({"password", "is_active"})


def changed_by(user, *, actor=None, client: Client | None = None) -> None:
    """Name who is about to change and save `user`, so its events say who acted and where."""
    setattr(user, CHANGED_BY, (actor, client))


def end_sessions(*, user, reason: str, event: str, keep: Session | None = None, **details) -> int:
    """End every session of `user` (but `keep`) for an account change, with its event."""
    actor, client = getattr(user, CHANGED_BY, (None, None))
    with transaction.atomic():
        revoked = session_revoke_all(
            user=user, reason=reason, keep=keep, client=client, actor=actor
        )
        security_event(
            event,
            user=user,
            sid=keep.id if keep else None,
            client=client,
            actor=actor,
            revoked_sessions=revoked,
            **details,
        )
    return revoked


class EndSessionsOnPasswordChange:
    """The hook of `set_password()`: a password "validator" that enforces no rule."""

    def validate(self, password, user=None) -> None:
        """Accept every password."""

    def password_changed(self, password, user=None) -> None:
        """End every session of the user; a new user's first password changes nothing."""
        if user is None or getattr(user, BEFORE_SAVE, {}).get("created"):
            return
        end_sessions(user=user, reason=RevokeReason.PASSWORD_CHANGE, event="password_changed")

    def get_help_text(self) -> str:
        return "Changing your password signs you out of every other session."


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.hooks.before")
def read_row_before_save(sender, instance, raw=False, update_fields=None, **kwargs):
    """Read what the save may change, so the hooks after it can tell: one small query."""
    before = {"created": instance._state.adding}
    watched = update_fields is None or WATCHED_FIELDS.intersection(update_fields)
    if not raw and not instance._state.adding and watched:
        before.update(
            sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
            or {}
        )
    setattr(instance, BEFORE_SAVE, before)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.hooks.after")
def end_sessions_after_save(sender, instance, created, raw=False, **kwargs):
    """After the row is written: a deactivation or a disabled password ends every session.

    After, not before: a login that commits between the two would otherwise keep a
    session; a login re-reads the row (accounts.services.session_login).
    """
    before = getattr(instance, BEFORE_SAVE, {})
    if raw or created or "is_active" not in before:
        return
    if before["is_active"] and not instance.is_active:
        end_sessions(user=instance, reason=RevokeReason.USER_DEACTIVATED, event="user_deactivated")
    if is_password_usable(before["password"]) and not instance.has_usable_password():
        end_sessions(
            user=instance,
            reason=RevokeReason.PASSWORD_CHANGE,
            event="password_changed",
            password_disabled=True,
        )
