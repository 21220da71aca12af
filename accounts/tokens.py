"""SimpleJWT token classes bound to a session, and the fingerprint kept at rest."""

import hashlib
from dataclasses import dataclass

from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

SESSION_CLAIM = "sid"


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


class SessionAccessToken(TimeClaimsMixin, AccessToken):
    """An access token; its lifetime is read when issued, not at import."""

    @property
    def lifetime(self):
        return simplejwt.api_settings.ACCESS_TOKEN_LIFETIME


class SessionRefreshToken(TimeClaimsMixin, RefreshToken):
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
