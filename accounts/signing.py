"""How tokens are signed and verified: SimpleJWT's token backend, on the app's key ring.

Every token names its key in the JOSE header (`kid`) and carries `iss` (and `aud` when
AUDIENCE is set). With a public-key SIGNING_ALGORITHM (RS256 by default) the keys are
the key ring's: another service verifies with the published JWKS alone. With HS* the
key is SimpleJWT's SIGNING_KEY, a shared secret that nothing publishes.
"""

import jwt
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
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenBackendError("Token is invalid") from exc
        key = self.key_for_verifying(header.get("kid"))
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


token_backend = KeyRingBackend()
