"""How tokens are signed and verified: SimpleJWT's token backend, on the app's key ring.

Every token names its key in the JOSE header (`kid`) and carries `iss` (and `aud` when
AUDIENCE is set). With a public-key SIGNING_ALGORITHM (RS256 by default) the keys are
the key ring's: another service verifies with the published JWKS alone. With HS* the
key is SimpleJWT's SIGNING_KEY, a shared secret that nothing publishes.
"""

import functools
import json

import jwt
from jwt.utils import base64url_decode
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken

from accounts import keys
from accounts.conf import app_settings
from accounts.keyring import RingKey, key_ring


class KeyRingBackend(TokenBackend):
    """SimpleJWT's TokenBackend, choosing the key per token by `kid`, reading settings per call."""

    def __init__(self) -> None:
        super().__init__(algorithm="HS256", leeway=None)  # neither is used: see the properties

    @property
    def leeway(self):
        return simplejwt.api_settings.LEEWAY

    @leeway.setter
    def leeway(self, value) -> None:
        """SimpleJWT's __init__ sets it; the setting is read per call instead."""

    def key_for_signing(self, kid: str | None = None) -> RingKey:
        """The key to sign with: the active one, or `kid` (re-minting a pair it signed)."""
        algorithm = app_settings.SIGNING_ALGORITHM
        if algorithm.startswith("HS"):
            secret = simplejwt.api_settings.SIGNING_KEY
            return RingKey(keys.secret_kid(secret), algorithm, secret, secret)
        return key_ring.signing(kid)

    def key_for_verifying(self, kid) -> RingKey | None:
        """The key `kid` names, if it is one whose signatures still count."""
        algorithm = app_settings.SIGNING_ALGORITHM
        if algorithm.startswith("HS"):
            secret = simplejwt.api_settings.SIGNING_KEY
            return RingKey(kid, algorithm, secret) if kid == keys.secret_kid(secret) else None
        return key_ring.verifying(kid) if isinstance(kid, str) else None

    def encode(self, payload: dict, kid: str | None = None) -> str:
        """Sign `payload` with `iss` (and `aud`) added, naming the key in the header."""
        key = self.key_for_signing(kid)
        claims = {**payload, "iss": app_settings.ISSUER}
        if app_settings.AUDIENCE is not None:
            claims["aud"] = app_settings.AUDIENCE
        return jwt.encode(
            claims,
            key.private,
            algorithm=key.algorithm,
            headers={"kid": key.kid},
            json_encoder=simplejwt.api_settings.JSON_ENCODER,
        )

    def sign(self, claims: dict, *, headers: dict) -> str:
        """Sign `claims` exactly as given with the active key (events: accounts.push)."""
        key = self.key_for_signing()
        return jwt.encode(
            claims,
            key.private,
            algorithm=key.algorithm,
            headers={**headers, "kid": key.kid},
            json_encoder=simplejwt.api_settings.JSON_ENCODER,
        )

    def decode(self, token, verify: bool = True) -> dict:
        """Verify with the key the header names; its algorithm only, never the header's."""
        raw = token.encode() if isinstance(token, str) else token
        try:
            kid = _kid(raw.partition(b".")[0])
        except (jwt.InvalidTokenError, ValueError):
            raise TokenBackendError("Token is invalid") from None
        key = self.key_for_verifying(kid)
        if key is None:
            raise TokenBackendError("Token is signed by an unknown key")
        audience = app_settings.AUDIENCE
        try:
            return jwt.decode(
                token,
                key.public,
                algorithms=[key.algorithm],
                issuer=app_settings.ISSUER,
                audience=audience,
                leeway=self.get_leeway(),
                options={
                    "verify_aud": audience is not None,
                    "verify_signature": verify,
                    "require": ["iss"],
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenBackendExpiredToken("Token is expired") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenBackendError("Token is invalid") from exc


@functools.lru_cache(maxsize=64)
def _kid(segment: bytes):
    """The `kid` of a JOSE header segment, parsed once per distinct header.

    Every token a key signs carries the very same header, so nearly every request finds
    it here, and skips parsing a header that PyJWT then parses again while it verifies.
    Only the key's choice hangs on it: PyJWT's verification covers the header as sent.
    """
    header = json.loads(base64url_decode(segment))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return header.get("kid")


token_backend = KeyRingBackend()
