"""Sign-in sessions: one login and the family of refresh tokens rotated from it."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken


class RevokeReason(models.TextChoices):
    """Why a session ended early."""

    LOGOUT = "logout", "Logout"
    LOGOUT_ALL = "logout_all", "Logout from all sessions"
    PASSWORD_CHANGE = "password_change", "Password change"
    REUSE_DETECTED = "reuse_detected", "Refresh token reuse detected"
    ADMIN = "admin", "Revoked by an administrator"
    USER = "user", "Revoked by the user"
    USER_DEACTIVATED = "user_deactivated", "User deactivated"
    SESSION_LIMIT = "session_limit", "Over the per-user session limit"


class SessionQuerySet(models.QuerySet):
    """Filters by lifecycle state, evaluated at the current time."""

    def active(self):
        """Sessions that are neither revoked nor past their absolute expiry."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())

    def revoked(self):
        return self.filter(revoked_at__isnull=False)

    def expired(self):
        return self.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())


class Session(models.Model):
    """One sign-in: named by `sid` in every access and refresh token it issues."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_sessions"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Rotation time; also the session's "last used", to within one access lifetime.
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        db_index=True, help_text="Absolute expiry; rotation never extends it."
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # The only refresh token that may be rotated; any other of this family is a replay.
    current_token = models.OneToOneField(
        OutstandingToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The jti of the current and the last rotated-out token, kept on the row itself:
    # a refresh decides on the row it locks, and under PostgreSQL's READ COMMITTED a
    # locked row is re-read fresh while rows joined to it are not.
    current_jti = models.CharField(max_length=255, blank=True)
    previous_jti = models.CharField(max_length=255, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    revoked_reason = models.CharField(max_length=32, choices=RevokeReason.choices, blank=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["user", "-created_at"], name="session_user_created")]

    def __str__(self) -> str:
        return f"Session {self.id} of {self.user_id}"

    @property
    def sid(self) -> str:
        """The `sid` claim of this session's tokens."""
        return str(self.id)

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at <= (now or timezone.now())

    def is_active(self, now=None) -> bool:
        return not self.is_revoked() and not self.is_expired(now)

    @property
    def status(self) -> str:
        """active, revoked or expired."""
        if self.is_revoked():
            return "revoked"
        return "expired" if self.is_expired() else "active"


class SessionToken(models.Model):
    """Ties an outstanding refresh token to the session that issued it."""

    token = models.OneToOneField(
        OutstandingToken, on_delete=models.CASCADE, primary_key=True, related_name="session_link"
    )
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="token_links")

    class Meta:
        verbose_name = "session refresh token"

    def __str__(self) -> str:
        return f"{self.token.jti} of session {self.session_id}"
