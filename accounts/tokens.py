"""SimpleJWT token classes bound to a session, how a pair is minted, and what is kept at rest."""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.signing import token_backend

SESSION_CLAIM = "sid"
# In access tokens: when the session stops being usable without a refresh (its absolute
# expiry, or its refresh token's), so a check without the session row still honours it.
SESSION_EXPIRY_CLAIM = "session_exp"


def fingerprint(token: str) -> str:
    """SHA-256 of an issued token: what the database keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class TimeClaimsMixin:
    """Refuse a token whose `exp` is no time at all as invalid, not with a 500.

    PyJWT checks that `exp` is a number and not past; SimpleJWT then turns it into a
    datetime, which fails for a numeric string or a number beyond year 9999. Only a
    holder of the signing key can mint such a token, but it is still a 401.
    """

    def check_exp(self, claim: str = "exp", current_time=None) -> None:
        try:
            super().check_exp(claim, current_time)
        except (TypeError, ValueError, OverflowError, OSError):
            raise TokenError(f"Token '{claim}' claim is not a time") from None


class KeyRingTokenMixin:
    """Sign and verify through the app's key ring (accounts.signing), naming the key.

    `signing_kid` pins the key that signs this token: a re-minted pair must be signed
    by the key that signed it the first time, to be the very same bytes.
    """

    signing_kid: str | None = None

    def get_token_backend(self):
        return token_backend

    def __str__(self) -> str:
        return self.get_token_backend().encode(self.payload, kid=self.signing_kid)


class SessionAccessToken(KeyRingTokenMixin, TimeClaimsMixin, AccessToken):
    """An access token; its lifetime is read when issued, not at import."""

    @property
    def lifetime(self):
        return simplejwt.api_settings.ACCESS_TOKEN_LIFETIME


class SessionRefreshToken(KeyRingTokenMixin, TimeClaimsMixin, RefreshToken):
    """A refresh token of one session, rotated and blacklisted by the session service."""

    access_token_class = SessionAccessToken

    @property
    def lifetime(self):
        return simplejwt.api_settings.REFRESH_TOKEN_LIFETIME

    def check_blacklist(self) -> None:
        """Skip SimpleJWT's blacklist query: the session already knows its one current jti.

        A blacklisted token is never the session's current token, so the session
        service refuses it (and treats it as a replay) without an extra query.
        """


@dataclass(frozen=True)
class TokenPair:
    """A freshly minted access and refresh token of one session."""

    access: str
    refresh: str
    # When the refresh token's `exp` falls: how long a browser keeps it in its cookie.
    refresh_expires_at: datetime
    # The key that signed both (the `kid` in their headers).
    kid: str = ""


def successor_jti(parent_jti: str, kind: str) -> str:
    """The jti of the `kind` ("access" or "refresh") token a rotation of `parent_jti` mints.

    Keyed with a server secret: nobody without SECRET_KEY can compute or predict it,
    yet the server can mint the same successor again without having stored it.
    """
    key = hashlib.sha256(b"accounts.tokens.successor_jti\0" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, f"{kind}\0{parent_jti}".encode(), hashlib.sha256).hexdigest()[:32]


def mint_pair(
    *, session, issued_at: datetime, parent_jti: str | None = None, kid: str | None = None
) -> tuple[TokenPair, SessionRefreshToken]:
    """The access and refresh token `session` issues at `issued_at`: the one way a pair is made.

    At login (no parent) the jtis are random. At a rotation they derive from the
    parent's jti, and every claim comes from the session and the arguments, so minting
    again from the same arguments gives the same claims, and the same bytes wherever the
    signature is deterministic (HS*, RS*, EdDSA) and the key the same (`kid`, the one
    that signed it first): that is how a forgiven replay gets the very same pair.
    The refresh token lives REFRESH_TOKEN_LIFETIME (the idle timeout, renewed by each
    rotation), never past the session's absolute expiry.
    """
    refresh_expires_at = min(
        issued_at + simplejwt.api_settings.REFRESH_TOKEN_LIFETIME, session.expires_at
    )
    kid = token_backend.key_for_signing(kid).kid
    jti = simplejwt.api_settings.JTI_CLAIM
    refresh = SessionRefreshToken()
    refresh[simplejwt.api_settings.USER_ID_CLAIM] = str(session.user_id)
    refresh[SESSION_CLAIM] = str(session.pk)
    refresh.set_iat(at_time=issued_at)
    refresh.set_exp(from_time=issued_at, lifetime=refresh_expires_at - issued_at)
    if parent_jti is not None:
        refresh[jti] = successor_jti(parent_jti, "refresh")
    access = refresh.access_token
    access.set_iat(at_time=issued_at)
    access.set_exp(from_time=issued_at)
    # When the session stops being usable without a refresh: the zero-query path checks it.
    access[SESSION_EXPIRY_CLAIM] = int(refresh_expires_at.timestamp())
    if parent_jti is not None:
        access[jti] = successor_jti(parent_jti, "access")
    access.signing_kid = refresh.signing_kid = kid
    pair = TokenPair(
        access=str(access),
        refresh=str(refresh),
        refresh_expires_at=datetime_from_epoch(refresh["exp"]),
        kid=kid,
    )
    return pair, refresh
