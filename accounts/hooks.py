"""The hooks that end a user's sessions when the user changes any other way than through us.

The API and the admin change passwords and deactivate users through accounts.users,
which ends the sessions and names who did it. A change made any other way
(`manage.py changepassword`, `set_password()` or `is_active = False` and `save()` from
code) is caught here, and ends every session of the user too, with no actor. Sessions
are revoked (a timestamp), so reactivating a user or restoring a password revives none
of them. `QuerySet.update()`, raw SQL and `loaddata` (a raw save: fixtures load rows as
they are) bypass these hooks, as they bypass every model hook.

- `set_password()` then `save()`: Django calls each password validator's
  `password_changed()`; EndSessionsOnPasswordChange is that hook. A hash upgraded at
  login is no change, and Django does not call it then.
- `set_unusable_password()` and turning `is_active` off: the save's own hooks compare
  the row before and after.
- Deleting a user (`delete()`, the admin): its sessions end just before, so the record
  keeps their end.
"""

from django.conf import settings
from django.contrib.auth.hashers import is_password_usable
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from accounts.models import EventKind, RevokeReason, Session
from accounts.users import account_changed

# What a save's pre_save hook read of the row, for the same save's post_save hook and the
# validator: the only way Django's two signals of one save can compare before and after.
ROW_BEFORE_SAVE = "_accounts_row_before_save"
WATCHED_FIELDS = frozenset({"password", "is_active"})


class EndSessionsOnPasswordChange:
    """The hook of `set_password()`: a password "validator" that enforces no rule."""

    def validate(self, password, user=None) -> None:
        """Accept every password."""

    def password_changed(self, password, user=None) -> None:
        """End every session of the user; a new user's first password changes nothing."""
        if user is None or getattr(user, ROW_BEFORE_SAVE, {}).get("created"):
            return
        account_changed(user=user, kind=EventKind.PASSWORD_CHANGED)

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
    setattr(instance, ROW_BEFORE_SAVE, before)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.hooks.after")
def end_sessions_after_save(sender, instance, created, raw=False, **kwargs):
    """After the row is written: a deactivation or a disabled password ends every session.

    After, not before: a login that commits between the two would otherwise keep a
    session; a login re-reads the row (accounts.services.sign_in).
    """
    before = getattr(instance, ROW_BEFORE_SAVE, {})
    if raw or created or "is_active" not in before:
        return
    if before["is_active"] and not instance.is_active:
        account_changed(user=instance, kind=EventKind.USER_DEACTIVATED)
    if is_password_usable(before["password"]) and not instance.has_usable_password():
        account_changed(user=instance, kind=EventKind.PASSWORD_CHANGED, password_disabled=True)


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.hooks.delete")
def end_sessions_before_delete(sender, instance, **kwargs):
    """A user about to be deleted: its sessions end first, as any other end does.

    Their `session_revoked` events outlive the rows (their user becomes empty), so the
    record keeps who was signed in; resource servers hear of it; and the revocation list
    that authenticates without a query marks them (accounts.revocations).
    """
    Session.objects.filter(user=instance).revoke(RevokeReason.USER_DELETED)
