"""Sign-in sessions: one login and the family of refresh tokens rotated from it."""

import functools
import uuid

from django.conf import settings
from django.db import connections, models, router
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.devices import DEVICE_MAX_LENGTH


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


class SessionKind(models.TextChoices):
    """How a session signs its requests."""

    API = "api", "API (tokens)"
    # A browser signed in through Django's login (the admin): a session cookie, no tokens.
    ADMIN = "admin", "Admin sign-in"


class SessionQuerySet(models.QuerySet):
    """Filters by lifecycle state, evaluated at the current time."""

    def active(self):
        """Sessions neither revoked, nor past their absolute expiry, nor idle too long."""
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now, idle_expires_at__gt=now)

    def revoked(self):
        """Sessions ended early, whatever their expiry."""
        return self.filter(revoked_at__isnull=False)

    def expired(self):
        """Sessions not revoked, but past their absolute expiry or idle too long."""
        now = timezone.now()
        return self.filter(
            models.Q(expires_at__lte=now) | models.Q(idle_expires_at__lte=now),
            revoked_at__isnull=True,
        )


class SessionManager(models.Manager.from_queryset(SessionQuerySet)):
    """Sessions, plus the one lookup every authenticated request makes."""

    def get_with_user(self, sid) -> "Session":
        """The session `sid` with its user, in one query; Session.DoesNotExist if none.

        Equivalent to select_related("user").get(pk=sid) for the fields loaded here: the
        session's id, user, kind, expiry and revocation, the user's id, is_active and username;
        the others load on first use (one query), as deferred fields do. It runs on every
        request, and building that join's SQL through the ORM cost 0.4 ms of CPU more
        than stock SimpleJWT's User.objects.get() in the bench; raw() skips the build.
        A bad sid raises ValidationError, as filter(pk=...) would.
        """
        db = router.db_for_read(self.model)
        pk = self.model._meta.pk.get_db_prep_value(sid, connections[db])
        session = next(iter(self.db_manager(db).raw(_session_with_user_sql(db), [pk])), None)
        if session is None:
            raise self.model.DoesNotExist
        user_model = self.model._meta.get_field("user").related_model
        loaded = {
            user_model._meta.pk.attname: session.user_id,
            "is_active": bool(session.user_is_active),  # SQLite answers 0 or 1
            user_model.USERNAME_FIELD: session.user_username,
        }
        # from_db() takes the values in the model's field order.
        names = [f.attname for f in user_model._meta.concrete_fields if f.attname in loaded]
        session.user = user_model.from_db(db, names, [loaded[name] for name in names])
        return session


@functools.cache
def _session_with_user_sql(alias: str) -> str:
    """SELECT the session row's live-state columns and its user's, by the session id."""
    quote = connections[alias].ops.quote_name
    session = Session._meta
    user = session.get_field("user").related_model._meta

    def column(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    pk, user_id = column(session, "id"), column(session, "user")
    selected = ", ".join(
        (
            f"s.{pk}",
            f"s.{user_id}",
            f"s.{column(session, 'kind')}",
            f"s.{column(session, 'expires_at')}",
            f"s.{column(session, 'revoked_at')}",
            f"u.{column(user, 'is_active')} AS user_is_active",
            f"u.{column(user, user.model.USERNAME_FIELD)} AS user_username",
        )
    )
    # Table and column names come from the models' metadata: no input reaches this SQL.
    return (
        f"SELECT {selected} FROM {quote(session.db_table)} s "  # noqa: S608
        f"INNER JOIN {quote(user.db_table)} u ON u.{quote(user.pk.column)} = s.{user_id} "
        f"WHERE s.{pk} = %s"
    )


class Session(models.Model):
    """One sign-in: named by `sid` in every access and refresh token it issues."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_sessions"
    )
    kind = models.CharField(max_length=16, choices=SessionKind.choices, default=SessionKind.API)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Rotation time; also the session's "last used", to within one access lifetime.
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        db_index=True, help_text="Absolute expiry; rotation never extends it."
    )
    # When the current refresh token expires: each rotation renews it, up to expires_at.
    idle_expires_at = models.DateTimeField(help_text="Idle expiry; each rotation renews it.")
    ip_address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # The user agent as a person reads it, worked out once at sign-in (accounts.devices).
    device = models.CharField(max_length=DEVICE_MAX_LENGTH, blank=True)
    # The only refresh token that may be rotated; any other of this family is a replay.
    current_token = models.OneToOneField(
        OutstandingToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The jti of the current and the last rotated-out token, kept on the row itself:
    # a refresh decides on the row it locks, and under PostgreSQL's READ COMMITTED a
    # locked row is re-read fresh while rows joined to it are not.
    current_jti = models.CharField(max_length=255, blank=True)
    previous_jti = models.CharField(max_length=255, blank=True)
    # The client the last rotation answered (device label, and its /24 or /64 network):
    # only that client may present the rotated-out token again within the grace window.
    refreshed_network = models.CharField(max_length=49, blank=True)
    refreshed_device = models.CharField(max_length=DEVICE_MAX_LENGTH, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    revoked_reason = models.CharField(max_length=32, choices=RevokeReason.choices, blank=True)

    objects = SessionManager()

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["user", "-created_at"], name="session_user_created")]

    def __str__(self) -> str:
        return f"{self.user.get_username()}'s session of {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def sid(self) -> str:
        """The `sid` claim of this session's tokens."""
        return str(self.id)

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        """Past the absolute expiry, which nothing extends."""
        return self.expires_at <= (now or timezone.now())

    def is_idle(self, now=None) -> bool:
        """Its refresh token expired unused: the session cannot be refreshed any more."""
        return self.idle_expires_at <= (now or timezone.now())

    @property
    def status(self) -> str:
        """active, revoked or expired (absolute or idle)."""
        if self.is_revoked():
            return "revoked"
        now = timezone.now()
        return "expired" if self.is_expired(now) or self.is_idle(now) else "active"


class SessionToken(models.Model):
    """Ties an outstanding refresh token to the session that issued it."""

    token = models.OneToOneField(
        OutstandingToken, on_delete=models.CASCADE, primary_key=True, related_name="session_link"
    )
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="token_links")

    class Meta:
        verbose_name = "session refresh token"

    def __str__(self) -> str:
        return f"{self.token.jti} of {self.session}"


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
