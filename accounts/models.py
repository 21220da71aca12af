"""Sign-in sessions: one login and the family of refresh tokens rotated from it."""

import functools
import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models, router, transaction
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
    REVOKED_BY_CLIENT = "revoked_by_client", "Revoked through /auth/revoke (RFC 7009)"
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

    def by_operator(self) -> bool:
        """A staff user acted on someone else's account (an admin revoke, a password reset)."""
        return self.actor_id is not None and self.actor_id != self.user_id


class KeyState(models.TextChoices):
    """Where a signing key is in its rotation: staged, active, previous, retired."""

    # Published in the JWKS, not yet signing: resource servers learn it before they need it.
    STAGED = "staged", "Staged (published, not signing)"
    ACTIVE = "active", "Active (signing)"
    # Replaced by another; still published, so what it signed keeps verifying.
    PREVIOUS = "previous", "Previous (verifying only)"
    # Leaves the JWKS once the last token it signed has expired (`needed_until`).
    RETIRED = "retired", "Retired"


class KeyRotationError(Exception):
    """A rotation step refused, with the reason an operator reads."""


class SigningKeyQuerySet(models.QuerySet):
    """Keys by what they are still good for, and the one way a key is made."""

    def verifying(self, now=None):
        """Keys whose signatures still count, and so the JWKS publishes: all but dead ones."""
        now = now or timezone.now()
        return self.exclude(state=KeyState.RETIRED, needed_until__lte=now)

    def add(self, *, algorithm: str, private_key=None, active: bool = False) -> "SigningKey":
        """Store a new key pair (generated, or `private_key`), staged; or active, for the first.

        The private key is encrypted with KEY_ENCRYPTION_KEY before it reaches the database.
        """
        from accounts.keys import (
            encrypt,
            fit_problems,
            generate,
            private_pem,
            public_pem,
            thumbprint,
        )

        private_key = private_key or generate(algorithm)
        problems = fit_problems(algorithm, private_key)
        private, public = private_pem(private_key), public_pem(private_key)
        if problems:
            raise KeyRotationError("; ".join(problems))
        kid = thumbprint(public)
        if self.filter(kid=kid).exists():
            raise KeyRotationError(f"Key {kid} is already in the key ring")
        now = timezone.now()
        return self.create(
            kid=kid,
            algorithm=algorithm,
            state=KeyState.ACTIVE if active else KeyState.STAGED,
            public_key=public,
            encrypted_private_key=encrypt(private, key_encryption_keys()),
            created_at=now,
            activated_at=now if active else None,
        )


class SigningKey(models.Model):
    """A key pair tokens and events are signed with; the private half only ever encrypted.

    Rows change only through accounts.keyring's verbs (the `signing_keys` command): add,
    activate, retire. Every app server reads them, so one command rotates them all.
    """

    kid = models.CharField("key id", max_length=64, unique=True)
    algorithm = models.CharField(max_length=16)
    state = models.CharField(max_length=16, choices=KeyState.choices, default=KeyState.STAGED)
    public_key = models.TextField(help_text="PEM; published in the JWKS.")
    # Fernet ciphertext of the PEM private key, under KEY_ENCRYPTION_KEY: never the key.
    encrypted_private_key = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, help_text="Published since.")
    activated_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    needed_until = models.DateTimeField(
        null=True, blank=True, help_text="When the last token a retired key signed expires."
    )

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            # Two keys signing at once would be a rotation half done: the database refuses.
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="active"), name="one_active_signing_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm}, {self.state})"

    def activate(self, *, wait: timedelta, now=None) -> "SigningKey | None":
        """Sign with this key from now on; the active one becomes previous. Returns that one.

        Refused for a key published for less than `wait` (how long clients may cache the
        JWKS): a resource server must know a key before it meets a token signed with it.
        """
        now = now or timezone.now()
        with transaction.atomic():
            key = type(self).objects.select_for_update().get(pk=self.pk)
            if key.state == KeyState.ACTIVE:
                raise KeyRotationError(f"Key {key.kid} is already active")
            if key.state == KeyState.RETIRED:
                raise KeyRotationError(f"Key {key.kid} is retired; add a new key instead")
            published = now - key.created_at
            if published < wait:
                raise KeyRotationError(
                    f"Key {key.kid} has been published for {int(published.total_seconds())} s; "
                    f"clients may cache the JWKS for {int(wait.total_seconds())} s, so one that "
                    f"fetched it just before may not know this key yet. Wait "
                    f"{int((wait - published).total_seconds()) + 1} s more, or pass --now."
                )
            previous = type(self).objects.select_for_update().filter(state=KeyState.ACTIVE).first()
            if previous is not None:
                previous.state, previous.deactivated_at = KeyState.PREVIOUS, now
                previous.save(update_fields=["state", "deactivated_at"])
            key.state, key.activated_at, key.deactivated_at = KeyState.ACTIVE, now, None
            key.save(update_fields=["state", "activated_at", "deactivated_at"])
        return previous

    def retire(self, *, longest_token: timedelta, now=None) -> None:
        """Stop publishing this key once the last token it may have signed has expired."""
        now = now or timezone.now()
        with transaction.atomic():
            key = type(self).objects.select_for_update().get(pk=self.pk)
            if key.state == KeyState.ACTIVE:
                raise KeyRotationError(
                    f"Key {key.kid} is signing; activate another key before retiring it"
                )
            if key.state == KeyState.RETIRED:
                raise KeyRotationError(f"Key {key.kid} is already retired")
            # A key that never signed is needed no longer; one that did, until its tokens die.
            signed_until = key.deactivated_at if key.activated_at else None
            key.state, key.retired_at = KeyState.RETIRED, now
            key.needed_until = (signed_until + longest_token) if signed_until else now
            key.save(update_fields=["state", "retired_at", "needed_until"])
        self.refresh_from_db()


def key_encryption_keys() -> list[str]:
    """KEY_ENCRYPTION_KEY then its fallbacks: the first encrypts, any of them decrypts."""
    from accounts.conf import app_settings

    current = app_settings.KEY_ENCRYPTION_KEY
    if not current:
        if not settings.DEBUG:
            raise ImproperlyConfigured(
                "ACCOUNTS['KEY_ENCRYPTION_KEY'] is not set: the private signing keys cannot "
                "be stored or read (manage.py check says more)."
            )
        current = settings.SECRET_KEY  # development only
    return [current, *app_settings.KEY_ENCRYPTION_KEY_FALLBACKS]


class ResourceServerQuerySet(models.QuerySet):
    """Registered services, and the one way one is made."""

    def register(self, *, name: str, push_url: str = "") -> tuple["ResourceServer", str]:
        """A new resource server and its client secret, shown this once and stored hashed."""
        secret = secrets.token_urlsafe(32)
        server = self.create(
            name=name,
            client_id="rs_" + secrets.token_urlsafe(12),
            secret_hash=ResourceServer.hash_secret(secret),
            push_url=push_url,
        )
        return server, secret

    def authenticated(self, client_id: str, secret: str) -> "ResourceServer | None":
        """The enabled server with these credentials, else None (constant-time comparison)."""
        server = self.filter(client_id=client_id, enabled=True).first()
        if server is None or not server.check_secret(secret):
            return None
        return server


class ResourceServer(models.Model):
    """Another service that checks our tokens: it may introspect and receives session events.

    Its secret is 256 random bits, so a fast hash (SHA-256) protects it at rest as well
    as a slow password hash would, and introspection stays cheap per call.
    """

    name = models.CharField(max_length=100, unique=True)
    client_id = models.CharField(max_length=64, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    enabled = models.BooleanField(
        default=True, help_text="A disabled server can neither introspect nor revoke."
    )
    push_url = models.URLField(
        max_length=500, blank=True, help_text="Where session events are pushed (RFC 8935)."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ResourceServerQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash_secret(secret: str) -> str:
        """SHA-256 of the secret: what the database keeps."""
        return hashlib.sha256(secret.encode()).hexdigest()

    def check_secret(self, secret: str) -> bool:
        """Whether `secret` is this server's, compared in constant time."""
        return hmac.compare_digest(self.hash_secret(secret), self.secret_hash)

    def new_secret(self) -> str:
        """Replace the secret; the old one stops working at once. Returns the new one."""
        secret = secrets.token_urlsafe(32)
        self.secret_hash = self.hash_secret(secret)
        self.save(update_fields=["secret_hash"])
        return secret


class UsernameSkeleton(models.Model):
    """The keys that tell a user's name from its lookalikes (accounts.lookalikes): one row each.

    Every key is a SHA-256 of a form of the name. `folded` (the name case-folded) is
    how login finds a name typed in another case. The three skeletons are unique: of
    two lookalike names saved at once, the database keeps one. A skeleton is NULL where
    an account made before this table already held it (`manage.py lookalike_usernames`).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="username_skeleton",
    )
    folded = models.CharField(max_length=64, db_index=True)
    # NULL, not "": a unique index lets any number of rows lack a key, but not share "".
    skeleton = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001
    folded_skeleton = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001
    upper_skeleton = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001

    def __str__(self) -> str:
        return f"lookalike keys of user {self.user_id}"
