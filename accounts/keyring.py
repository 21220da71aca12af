"""The keys this process signs and verifies with, read from the database and kept briefly.

Verifying needs the public keys only; a private key is decrypted the first time it is
needed to sign, and kept. So a KEY_ENCRYPTION_KEY that opens nothing stops signing
(logins and refreshes answer 503, /healthz too, `check --database default` says why)
but never the verification of tokens already issued.

Every app server reads the same `SigningKey` rows, so `manage.py signing_keys activate`
on one machine rotates them all: each process rereads the ring after KEY_RING_SECONDS,
and at once when it meets a `kid` it does not know (a token signed by a key activated a
moment ago on another server), at most once a second. Between reads, verifying a token
costs no query. If the database cannot be read, the ring it holds stays in use.
"""

import logging
import threading
import time
from dataclasses import dataclass

from django.db import DatabaseError, IntegrityError, transaction

from accounts import keys
from accounts.conf import app_settings
from accounts.exceptions import NoSigningKey, SigningKeyUnreadable
from accounts.models import KeyState, SigningKey, key_encryption_keys

logger = logging.getLogger("accounts.keys")

# A process that meets an unknown kid rereads the ring at most this often (seconds).
MISS_REREAD_SECONDS = 1.0


@dataclass(frozen=True)
class RingKey:
    """One key as a process uses it: parsed, and for the active one, decrypted."""

    kid: str
    algorithm: str
    public: object
    private: object | None = None


class KeyRing:
    """A process's view of the signing keys; thread-safe, read lazily."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget every key: the next use reads the database (tests; after a rotation)."""
        self._keys: dict[str, RingKey] = {}
        self._signing: RingKey | None = None
        # The encrypted private halves of keys that have signed, and those opened so far.
        self._sealed: dict[str, str] = {}
        self._opened: dict[str, object] = {}
        self._read_at = float("-inf")
        self._missed_at = float("-inf")

    def signing(self, kid: str | None = None) -> RingKey:
        """The key to sign with, private half included: `kid` if it has signed, else the active.

        A forgiven refresh replay re-mints its pair with the very key that signed it, after
        a rotation too; anything else signs with the active key, the first one made if
        there is none.
        """
        self._fresh()
        if kid is not None and kid not in self._sealed:
            # A key that has signed, unknown to this process's ring or not yet active in it:
            # the ring is older than the key's activation, so read it again (at most once a
            # second), or the pair would be signed by another key than the first time.
            self._reread_for(kid)
        key = self._keys.get(kid) if kid is not None and kid in self._sealed else None
        if key is None:
            if self._signing is None:
                self._bootstrap()
            if self._signing is None:
                raise NoSigningKey()
            key = self._signing
        return RingKey(key.kid, key.algorithm, key.public, self._open(key.kid))

    def verifying(self, kid: str) -> RingKey | None:
        """The key named `kid` if its signatures still count; None for an unknown one."""
        self._fresh()
        if kid not in self._keys:
            self._reread_for(kid)
        return self._keys.get(kid)

    def _reread_for(self, kid: str) -> None:
        """Read the ring again for a kid it lacks; at most once a second, so tokens naming
        made-up kids cannot turn every request into a query."""
        now = time.monotonic()
        if now - self._missed_at >= MISS_REREAD_SECONDS:
            self._missed_at = now
            self._read()

    def _fresh(self) -> None:
        if time.monotonic() - self._read_at >= app_settings.KEY_RING_SECONDS:
            self._read()

    def _read(self) -> None:
        with self._lock:
            try:
                rows = list(SigningKey.objects.verifying())
            except DatabaseError:
                if not self._keys:
                    raise
                logger.warning("Signing keys could not be read; keeping the ones in memory")
                return
            known, read, sealed = self._keys, {}, {}
            signing = None
            for row in rows:
                key = known.get(row.kid) or RingKey(
                    row.kid, row.algorithm, keys.load_public(row.public_key)
                )
                if row.activated_at is not None:
                    sealed[row.kid] = row.encrypted_private_key
                if row.state == KeyState.ACTIVE:
                    signing = key
                read[row.kid] = key
            self._keys, self._signing, self._sealed = read, signing, sealed
            self._read_at = time.monotonic()

    def _open(self, kid: str):
        """The private half of `kid`, decrypted once; SigningKeyUnreadable if nothing opens it."""
        private = self._opened.get(kid)
        if private is None:
            try:
                pem = keys.decrypt(self._sealed[kid], key_encryption_keys())
            except keys.UndecryptableKey as exc:
                logger.error("Signing key %s cannot be decrypted: %s", kid, exc)
                raise SigningKeyUnreadable() from exc
            private = self._opened[kid] = keys.load_private(pem)
        return private

    def _bootstrap(self) -> None:
        """No key at all yet (a new installation): make the first one, active at once.

        Only an empty ring gets one: nobody can hold a token or a cached JWKS yet, so no
        rotation rule applies. Two servers racing here both try, and the database's
        one-active-key constraint keeps exactly one.
        """
        if SigningKey.objects.exists():
            logger.error("No signing key is active: run `manage.py signing_keys activate KID`")
            return
        try:
            with transaction.atomic():
                SigningKey.objects.add(algorithm=app_settings.SIGNING_ALGORITHM, active=True)
        except IntegrityError:
            pass  # another process made it first
        self._read()


key_ring = KeyRing()


def signing_ready() -> None:
    """Raise the 503 a login would meet if no token could be signed now; else nothing."""
    if not app_settings.SIGNING_ALGORITHM.startswith("HS"):
        key_ring.signing()
