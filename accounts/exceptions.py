"""Every accounts error, with the contract's exact text and a stable code."""

from rest_framework import exceptions, status

# The realm every 401 names (RFC 6750 §3).
REALM_HEADER = 'Bearer realm="api"'


class TokenRequired(exceptions.NotAuthenticated):
    """A protected route was called without a Bearer token."""

    default_detail = "JWT token is required"
    default_code = "token_required"


class RejectedToken(exceptions.AuthenticationFailed):
    """Base for 401s where a presented access token was refused (RFC 6750 §3.1)."""


class UnsupportedMediaType(exceptions.UnsupportedMediaType):
    """The body is not JSON; one text for every endpoint."""

    default_detail = "Request must be JSON"
    default_code = "unsupported_media_type"

    def __init__(self, media_type: str = "", detail=None, code=None) -> None:
        super().__init__(media_type, detail, code)


class UsernameTaken(exceptions.APIException):
    """Signup with a username someone already has."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Username already exists"
    default_code = "username_taken"


class InvalidCredentials(exceptions.AuthenticationFailed):
    """A failed login: one text for an unknown user and a wrong password, so neither is revealed."""

    default_detail = "Invalid username or password"
    default_code = "invalid_credentials"


class InvalidRefreshToken(RejectedToken):
    """A refresh token was presented and refused (its 401 says `error="invalid_token"`)."""

    # One text for every refusal (bad, expired, reused, revoked...), so a thief learns nothing.
    default_detail = "Invalid refresh token"
    default_code = "invalid_refresh_token"


class DuplicateRefreshCookie(RejectedToken):
    """A cookie-mode request carrying two refresh cookies: refused, never resolved."""

    default_detail = "Two refresh cookies were sent; sign in again"
    default_code = "duplicate_refresh_cookie"


class RefreshTokenMismatch(exceptions.PermissionDenied):
    """Logout with an access token of one session and a refresh token of another."""

    default_detail = "Refresh token does not belong to this session"
    default_code = "refresh_token_mismatch"


class CrossSiteRequest(exceptions.PermissionDenied):
    """A cookie route called without the fetch header (accounts.browser explains why)."""

    default_detail = (
        "Cross-site request refused: send the X-Requested-With: fetch header "
        "from a page of a trusted origin"
    )
    default_code = "csrf_failed"


class AccessTokenRequired(TokenRequired):
    """A protected route called without `Authorization: Bearer <token>`."""

    default_detail = "Access token is required in Authorization header"
    default_code = "access_token_required"


class InvalidAccessToken(RejectedToken):
    """An access token that is malformed or badly signed; the reason is appended."""

    default_detail = "Invalid JWT token"
    default_code = "invalid_token"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid JWT token: {reason}")


class AccessTokenExpired(RejectedToken):
    """An access token past its expiry; the client should refresh."""

    default_detail = "Token has expired"
    default_code = "token_expired"


class SessionRevoked(RejectedToken):
    """A well-signed access token whose session has ended (logout, reuse, revoke)."""

    default_detail = "You have been logged out. Please log in again."
    default_code = "session_revoked"


class WrongPassword(exceptions.APIException):
    """A password change whose current password is wrong."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Current password is incorrect"
    default_code = "wrong_password"


class SessionNotFound(exceptions.NotFound):
    """A session id that is malformed, unknown or another user's: one answer for all three."""

    default_detail = "Session not found"
    default_code = "session_not_found"


class NoSigningKey(exceptions.APIException):
    """Keys exist, but none is active (an operator retired or never activated one)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Signing is unavailable: no signing key is active"
    default_code = "no_signing_key"


class SigningKeyUnreadable(exceptions.APIException):
    """The active key's private half opens with no KEY_ENCRYPTION_KEY (nor its fallbacks)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Signing is unavailable: the signing key cannot be decrypted"
    default_code = "signing_key_unreadable"


# Texts of request-shape errors, used by the serializers' error_messages.
CREDENTIALS_REQUIRED = "Username and password are required"
REFRESH_TOKEN_REQUIRED = "Refresh token is required in request body"
