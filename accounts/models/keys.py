"""The key ring: the key pairs tokens and events are signed with, private halves encrypted."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from accounts.conf import app_settings


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
            if key.algorithm != app_settings.SIGNING_ALGORITHM:
                # Verifiers may pin the algorithm (the docs' own example does): a switch
                # would make them refuse every new token.
                raise KeyRotationError(
                    f"Key {key.kid} signs {key.algorithm}, but JWT_ALGORITHM is "
                    f"{app_settings.SIGNING_ALGORITHM}: add a key for "
                    f"{app_settings.SIGNING_ALGORITHM} instead"
                )
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
    current = app_settings.KEY_ENCRYPTION_KEY
    if not current:
        if not settings.DEBUG:
            raise ImproperlyConfigured(
                "ACCOUNTS['KEY_ENCRYPTION_KEY'] is not set: the private signing keys cannot "
                "be stored or read (manage.py check says more)."
            )
        current = settings.SECRET_KEY  # development only
    return [current, *app_settings.KEY_ENCRYPTION_KEY_FALLBACKS]
