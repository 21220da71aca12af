"""The keys this process signs and verifies with, read from the database and kept briefly.

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
from accounts.exceptions import NoSigningKey
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
        self._read_at = float("-inf")
        self._missed_at = float("-inf")

    def signing(self) -> RingKey:
        """The active key, with its private half; the first key is made if there is none."""
        self._fresh()
        if self._signing is None:
            self._bootstrap()
        if self._signing is None:
            raise NoSigningKey()
        return self._signing

    def verifying(self, kid: str) -> RingKey | None:
        """The key named `kid` if its signatures still count; None for an unknown one."""
        self._fresh()
        key = self._keys.get(kid)
        now = time.monotonic()
        if key is None and now - self._missed_at >= MISS_REREAD_SECONDS:
            self._missed_at = now
            self._read()
            key = self._keys.get(kid)
        return key

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
            known, read = self._keys, {}
            signing = None
            for row in rows:
                key = known.get(row.kid) or RingKey(
                    row.kid, row.algorithm, keys.load_public(row.public_key)
                )
                # Keys that have signed keep their private half: a forgiven refresh replay
                # re-mints its pair with the very key that signed it, after a rotation too.
                if row.activated_at is not None and key.private is None:
                    pem = keys.decrypt(row.encrypted_private_key, key_encryption_keys())
                    key = RingKey(key.kid, key.algorithm, key.public, keys.load_private(pem))
                if row.state == KeyState.ACTIVE:
                    signing = key
                read[row.kid] = key
            self._keys, self._signing, self._read_at = read, signing, time.monotonic()

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
