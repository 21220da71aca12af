"""Every accounts error, with the contract's exact text and a stable code."""

from rest_framework import exceptions, status

from project.exceptions import RejectedToken, TokenRequired


class UsernameTaken(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Username already exists"
    default_code = "username_taken"


class InvalidCredentials(exceptions.AuthenticationFailed):
    # One text for an unknown user and a wrong password, so neither is revealed.
    default_detail = "Invalid username or password"
    default_code = "invalid_credentials"


class InvalidRefreshToken(RejectedToken):
    """A refresh token was presented and refused (its 401 says `error="invalid_token"`)."""

    # One text for every refusal (bad, expired, reused, revoked...), so a thief learns nothing.
    default_detail = "Invalid refresh token"
    default_code = "invalid_refresh_token"


class RefreshTokenMismatch(exceptions.PermissionDenied):
    default_detail = "Refresh token does not belong to this session"
    default_code = "refresh_token_mismatch"


class CrossSiteRequest(exceptions.PermissionDenied):
    # The cookie routes answer only pages of this site (accounts.browser explains why).
    default_detail = (
        "Cross-site request refused: send the X-Requested-With: fetch header "
        "from a page of a trusted origin"
    )
    default_code = "csrf_failed"


class AccessTokenRequired(TokenRequired):
    default_detail = "Access token is required in Authorization header"
    default_code = "access_token_required"


class InvalidAccessToken(RejectedToken):
    default_detail = "Invalid JWT token"
    default_code = "invalid_token"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid JWT token: {reason}")


class AccessTokenExpired(RejectedToken):
    default_detail = "Token has expired"
    default_code = "token_expired"


class SessionRevoked(RejectedToken):
    default_detail = "You have been logged out. Please log in again."
    default_code = "session_revoked"


class WrongPassword(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Current password is incorrect"
    default_code = "wrong_password"


class SessionNotFound(exceptions.NotFound):
    default_detail = "Session not found"
    default_code = "session_not_found"


# Texts of request-shape errors, used by the serializers' error_messages.
CREDENTIALS_REQUIRED = "Username and password are required"
REFRESH_TOKEN_REQUIRED = "Refresh token is required in request body"
