"""Sign-in sessions: one login and the family of refresh tokens rotated from it."""

import functools
import uuid

from django.conf import settings
from django.db import connections, models, router, transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.devices import DEVICE_MAX_LENGTH
from accounts.models.events import EventKind


class RevokeReason(models.TextChoices):
    """Why a session ended early."""

    LOGOUT = "logout", "Logout"
    LOGOUT_ALL = "logout_all", "Logout from all sessions"
    PASSWORD_CHANGE = "password_change", "Password change"
    REUSE_DETECTED = "reuse_detected", "Refresh token reuse detected"
    ADMIN = "admin", "Revoked by an administrator"
    REVOKED_BY_CLIENT = "revoked_by_client", "Revoked through /auth/revoke (RFC 7009)"
    USER = "user", "Revoked by the user"
    USER_DEACTIVATED = "user_deactivated", "User deactivated"
    USER_DELETED = "user_deleted", "User deleted"
    SESSION_LIMIT = "session_limit", "Over the per-user session limit"


class SessionKind(models.TextChoices):
    """How a session signs its requests."""

    API = "api", "API (tokens)"
    # A browser signed in through Django's login (the admin): a session cookie, no tokens.
    ADMIN = "admin", "Admin sign-in"


# Sessions ended per statement: bounds the parameters of one query (SQLite's limit).
REVOKE_CHUNK = 500


class SessionQuerySet(models.QuerySet):
    """Filters by lifecycle state, at the current time; and the one way to end sessions."""

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

    def over_limit(self, user):
        """`user`'s active sessions past SESSION_LIMIT_PER_USER, oldest first to go."""
        from accounts.conf import app_settings

        newest_first = self.active().filter(user=user).order_by("-created_at", "-pk")
        return self.filter(pk__in=newest_first.values("pk")[app_settings.SESSION_LIMIT_PER_USER :])

    def revoke(self, reason, *, by=None, client=None, **details) -> int:
        """End every session here that has not ended yet; returns how many this call ended.

        Each gets its revocation time and `reason`, its current refresh token is
        blacklisted, its `session_revoked` event is written, and every resource server's
        session event is queued (accounts.push), in one transaction:
        every access token of the session is refused from the next request. Ending an
        ended session does nothing, so any path may call this twice. `by` is the staff
        user who acted on someone else's account; `details` go into each event (e.g. the
        resource server that asked). Every way a session ends comes through here.
        """
        from accounts import push, revocations
        from accounts.events import Event, record_all

        reason = RevokeReason(reason)  # an unknown reason raises, before anything is written
        model = self.model
        with transaction.atomic(using=self.db):
            rows = list(
                model.objects.select_for_update(of=("self",))
                .filter(pk__in=self.values("pk"), revoked_at__isnull=True)
                .values_list("pk", "user_id", "user__username", "current_token_id")
                .order_by("pk")
            )
            now = timezone.now()
            for start in range(0, len(rows), REVOKE_CHUNK):
                chunk = rows[start : start + REVOKE_CHUNK]
                model.objects.filter(pk__in=[pk for pk, *_ in chunk]).update(
                    revoked_at=now, revoked_reason=reason
                )
                BlacklistedToken.objects.bulk_create(
                    [BlacklistedToken(token_id=token_id) for *_, token_id in chunk if token_id],
                    ignore_conflicts=True,
                )
                record_all(
                    [
                        Event(
                            EventKind.SESSION_REVOKED,
                            user=user_id,
                            username=username,
                            sid=pk,
                            client=client,
                            reason=reason,
                            actor=by,
                            details=details,
                        )
                        for pk, user_id, username, _ in chunk
                    ]
                )
                # Every resource server hears of it, from the outbox, once this commits.
                push.session_ends(
                    [(pk, user_id) for pk, user_id, *_ in chunk], reason, by=by, now=now
                )
            # And every app server, at once: the zero-query path's list, before the
            # response goes (accounts.revocations).
            ended = [pk for pk, *_ in rows]
            transaction.on_commit(lambda: revocations.sessions_ended(ended), using=self.db)
        return len(rows)


class SessionManager(models.Manager.from_queryset(SessionQuerySet)):
    """Sessions, plus the one lookup every authenticated request makes."""

    def get_with_user(self, sid) -> "Session":
        """The session `sid` with its user, in one query; Session.DoesNotExist if none.

        Equivalent to select_related("user").get(pk=sid) for the fields loaded here: the
        session's id, user, kind, expiries and revocation, the user's id, is_active and username;
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
            f"s.{column(session, 'idle_expires_at')}",
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
    # The key that signed the last rotation's pair: a forgiven replay is signed by it again.
    refreshed_kid = models.CharField(max_length=64, blank=True)
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

    def record_refresh_token(self, refresh, *, fingerprint: str, issued_at) -> OutstandingToken:
        """Keep a refresh token this session issued: its OutstandingToken, in the chain."""
        token = outstanding_token(self.user_id, refresh, fingerprint=fingerprint, at=issued_at)
        SessionToken.objects.create(token=token, session=self)
        return token

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


def outstanding_token(user_id, refresh, *, fingerprint: str, at) -> OutstandingToken:
    """SimpleJWT's record of an issued refresh token: its jti and fingerprint, never the token."""
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.utils import datetime_from_epoch

    return OutstandingToken.objects.create(
        user_id=user_id,
        jti=refresh[api_settings.JTI_CLAIM],
        token=fingerprint,
        created_at=at,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
