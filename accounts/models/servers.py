"""Resource servers: other services that check our tokens and receive session events."""

import hashlib
import hmac
import secrets
from ipaddress import ip_address
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone


def validate_push_url(url: str) -> None:
    """An http(s) URL a session event may be pushed to; never one that names a credential
    or a host no receiver lives on (a cloud's metadata service, 0.0.0.0, multicast)."""
    URLValidator(schemes=("http", "https"))(url)
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError("A push URL carries no user or password.", code="credentials")
    try:
        host = ip_address(parts.hostname or "")
    except ValueError:
        return  # a host name: checked again, resolved, each time an event is sent
    if no_receiver_at(host):
        raise ValidationError(f"No receiver lives at {host}.", code="address")


def no_receiver_at(host) -> bool:
    """An address no resource server lives on: link-local (a cloud's metadata service),
    multicast, unspecified, reserved; an IPv4-mapped IPv6 address as the IPv4 it maps."""
    host = getattr(host, "ipv4_mapped", None) or host
    return host.is_link_local or host.is_multicast or host.is_unspecified or host.is_reserved


def validate_name(name: str) -> None:
    """A name for people: not blank."""
    if not name.strip():
        raise ValidationError("A resource server needs a name.", code="blank")


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
        if not client_id or len(client_id) > 64 or "\x00" in client_id:
            return None  # no client id has that shape; PostgreSQL text cannot even hold a NUL
        server = self.filter(client_id=client_id, enabled=True).first()
        if server is None or not server.check_secret(secret):
            return None
        return server


class ResourceServer(models.Model):
    """Another service that checks our tokens: it may introspect and receives session events.

    Its secret is 256 random bits, so a fast hash (SHA-256) protects it at rest as well
    as a slow password hash would, and introspection stays cheap per call.
    """

    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    client_id = models.CharField(max_length=64, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    enabled = models.BooleanField(
        default=True, help_text="A disabled server can neither introspect nor revoke."
    )
    push_url = models.URLField(
        max_length=500,
        blank=True,
        validators=[validate_push_url],
        help_text="Where session events are pushed (RFC 8935).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # A worker delivering to this server holds it until then (accounts.push): one at a
    # time, so its events arrive in order.
    delivering_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_delivered_at = models.DateTimeField(null=True, blank=True, editable=False)

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
