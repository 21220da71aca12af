"""The API's project-wide exceptions, each with its text and stable code."""

from rest_framework import exceptions, status

from accounts.exceptions import REALM_HEADER, RejectedToken, TokenRequired, UnsupportedMediaType

__all__ = [
    "REALM_HEADER",
    "BadRequest",
    "LengthRequired",
    "MigrationsPending",
    "NotFound",
    "PayloadTooLarge",
    "RejectedToken",
    "ServerError",
    "ServiceUnavailable",
    "TokenRequired",
    "UnsupportedMediaType",
    "error_body",
]


class NotFound(exceptions.NotFound):
    """An unknown route or object."""

    default_detail = "Not found"
    default_code = "not_found"


class PayloadTooLarge(exceptions.APIException):
    """The request body is larger than the API reads."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large"
    default_code = "request_too_large"


class LengthRequired(exceptions.APIException):
    """A body sent without a Content-Length (chunked): Django reads bodies by their length."""

    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_detail = "Send the request body with a Content-Length header"
    default_code = "length_required"


class ServiceUnavailable(exceptions.APIException):
    """The database cannot be reached; the client may retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service temporarily unavailable. Please retry shortly."
    default_code = "service_unavailable"
    wait = 5


class MigrationsPending(exceptions.APIException):
    """The database has not been migrated: a deploy step is missing, not a client error."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is not migrated yet: run `manage.py migrate`."
    default_code = "migrations_pending"
    wait = 30


class BadRequest(exceptions.APIException):
    """A request Django refused before any view ran."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request"
    default_code = "bad_request"


class ServerError(exceptions.APIException):
    """An unexpected error; details go to the log, never to the client."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = "Internal server error"
    default_code = "server_error"


def error_body(message: str, code: str, **extra) -> dict:
    """The contract's error shape."""
    return {"error": message, "code": code, **extra}
