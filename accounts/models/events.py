"""The security record: one append-only row per event (accounts.events writes them)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.devices import DEVICE_MAX_LENGTH


class EventKind(models.TextChoices):
    """What a security event records."""

    SIGNUP = "signup", "Signed up"
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Wrong password"
    LOCKED_OUT = "locked_out", "Locked out"
    REFRESH_REPLAYED = "refresh_replayed", "Refresh retried, forgiven"
    REUSE_DETECTED = "reuse_detected", "Refresh token reused"
    SESSION_REVOKED = "session_revoked", "Session ended"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    USER_DEACTIVATED = "user_deactivated", "User deactivated"


class SecurityEvent(models.Model):
    """One entry of the append-only security record (accounts.events writes them).

    A deleted user's events stay, with `user` cleared and `username` as it was, until
    retention (SECURITY_EVENT_RETENTION_DAYS) deletes them like every other.
    """

    kind = models.CharField(max_length=32, choices=EventKind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="security_events",
    )
    # The user's name when it happened; for a failed sign-in, the name that was tried.
    username = models.CharField(max_length=150, blank=True)
    # Sessions are deleted once expired; the record keeps the id, not a foreign key.
    session_id = models.UUIDField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    device = models.CharField(max_length=DEVICE_MAX_LENGTH, blank=True)
    # The staff user who acted on someone else's account.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.CharField(max_length=32, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-id",)
        # Every list and filter of the record reads through one of these, newest first.
        indexes = [
            models.Index(fields=["user", "-id"], name="event_user"),
            models.Index(fields=["kind", "-id"], name="event_kind"),
            models.Index(fields=["created_at"], name="event_created"),
            models.Index(fields=["ip_address"], name="event_ip"),
            models.Index(fields=["session_id"], name="event_session"),
            models.Index(fields=["username"], name="event_username"),
        ]

    def __str__(self) -> str:
        who = self.username or "unknown user"
        return f"{self.get_kind_display()}: {who}, {self.created_at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args, **kwargs) -> None:
        """Add, never change: the record is append-only."""
        if not self._state.adding:
            raise ValueError("Security events are never changed.")
        super().save(*args, **kwargs)

    def by_operator(self) -> bool:
        """A staff user acted on someone else's account (an admin revoke, a password reset)."""
        return self.actor_id is not None and self.actor_id != self.user_id
