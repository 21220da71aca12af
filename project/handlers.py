"""One exception handler: every API error becomes {"error": ..., "code": ...}."""

import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, OperationalError, ProgrammingError
from django.http import Http404, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisOutOfMemoryError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

from project.exceptions import (
    REALM_HEADER,
    BadRequest,
    MigrationsPending,
    NotFound,
    PayloadTooLarge,
    RejectedToken,
    ServerError,
    ServiceUnavailable,
    TokenRequired,
    UnsupportedMediaType,
    error_body,
)
from project.readiness import pending_migrations

logger = logging.getLogger("django.request")

# DRF's and Django's generic exceptions, swapped for ours with the API's texts.
_REPLACEMENTS = {
    Http404: NotFound,
    exceptions.NotFound: NotFound,
    exceptions.NotAuthenticated: TokenRequired,
    exceptions.UnsupportedMediaType: UnsupportedMediaType,
    DjangoPermissionDenied: exceptions.PermissionDenied,
}


_BY_STATUS = {
    400: BadRequest,
    403: exceptions.PermissionDenied,
    404: NotFound,
    413: PayloadTooLarge,
    500: ServerError,
}


def _first_error(detail) -> tuple[str, str]:
    """The first (message, code) in a ValidationError's nested detail."""
    while isinstance(detail, (dict, list)) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    if not detail:
        return "Invalid request.", "invalid"
    return str(detail), getattr(detail, "code", "invalid")


def _normalise(exc: Exception, request=None) -> exceptions.APIException:
    """Map any exception onto an APIException carrying the API's text."""
    replacement = _REPLACEMENTS.get(type(exc))
    if replacement is not None:
        return replacement()
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, RequestDataTooBig):
        # Django refused to read a body past DATA_UPLOAD_MAX_MEMORY_SIZE.
        return PayloadTooLarge()
    if isinstance(exc, SuspiciousOperation):
        return BadRequest()
    if isinstance(exc, (OperationalError, ProgrammingError)) and _not_migrated():
        # A missing table: the deploy skipped `migrate`. Say so, rather than "retry".
        return MigrationsPending()
    if is_unavailable(exc):
        return ServiceUnavailable()
    logger.error("Unhandled API error", exc_info=exc)
    # As Django does for an error it answers itself: error trackers (Sentry...) and other
    # receivers hear of it before the JSON 500 goes out.
    got_request_exception.send(sender=None, request=request)
    return ServerError()


def _not_migrated() -> bool:
    """Whether migrations are pending; False when the database cannot even say."""
    try:
        return bool(pending_migrations())
    except DatabaseError:
        return False


def is_unavailable(exc: BaseException) -> bool:
    """The database or Redis (the shared counters) cannot be reached, or Redis cannot write
    (out of memory, a read-only replica; loading after a restart is a ConnectionError):
    a retryable 503.

    Logged here, once, as a warning: an outage is news, but no bug to trace.
    """
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("Database unavailable: %s", exc)
        return True
    unwritable = (RedisOutOfMemoryError, RedisReadOnlyError)
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, *unwritable)):
        logger.warning("Cache unavailable: %s", exc)
        return True
    return False


def api_exception_handler(exc, context):
    """Wrap DRF's handler: its statuses, headers and rollback; the contract's body."""
    exc = _normalise(exc, context.get("request"))
    response = exception_handler(exc, context)
    if isinstance(exc, exceptions.ValidationError):
        message, code = _first_error(exc.detail)
        extra = {"fields": exc.detail} if isinstance(exc.detail, dict) else {}
        response.data = error_body(message, code, **extra)
    else:
        response.data = error_body(str(exc.detail), exc.get_codes())
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        rejected = ', error="invalid_token"' if isinstance(exc, RejectedToken) else ""
        response["WWW-Authenticate"] = REALM_HEADER + rejected
    return response


def error_for_status(status_code: int) -> exceptions.APIException:
    """The API's exception for an error status that Django answered itself."""
    known = _BY_STATUS.get(status_code)
    if known is not None:
        return known()
    phrase = HTTPStatus(status_code).phrase
    error = exceptions.APIException(phrase, code=phrase.lower().replace(" ", "_"))
    error.status_code = status_code
    return error


def error_response(exc: exceptions.APIException) -> JsonResponse:
    """A plain Django response with the contract's error body."""
    return JsonResponse(
        error_body(str(exc.detail), exc.get_codes()),
        status=exc.status_code,
        # Compact, as DRF's renderer writes the API's own errors.
        json_dumps_params={"separators": (",", ":"), "ensure_ascii": False},
    )
