"""One exception handler: every API error becomes {"error": ..., "code": ...}."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

from project.exceptions import (
    REALM_HEADER,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    RejectedToken,
    ServerError,
    ServiceUnavailable,
    TokenRequired,
    UnsupportedMediaType,
    error_body,
)

logger = logging.getLogger("django.request")

# DRF's and Django's generic exceptions, swapped for ours with the API's texts.
_REPLACEMENTS = {
    Http404: NotFound,
    exceptions.NotFound: NotFound,
    exceptions.NotAuthenticated: TokenRequired,
    exceptions.UnsupportedMediaType: UnsupportedMediaType,
    DjangoPermissionDenied: exceptions.PermissionDenied,
}


def _first_error(detail) -> tuple[str, str]:
    """The first (message, code) in a ValidationError's nested detail."""
    while isinstance(detail, (dict, list)) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    if not detail:
        return "Invalid request.", "invalid"
    return str(detail), getattr(detail, "code", "invalid")


def _normalise(exc: Exception) -> exceptions.APIException:
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
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is unreachable: a retryable 503, not a 500.
        logger.warning("Database unavailable: %s", exc)
        return ServiceUnavailable()
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        # Redis (throttle counters) is unreachable: the same retryable 503.
        logger.warning("Cache unavailable: %s", exc)
        return ServiceUnavailable()
    logger.error("Unhandled API error", exc_info=exc)
    return ServerError()


def api_exception_handler(exc, context):
    """Wrap DRF's handler: its statuses, headers and rollback; the contract's body."""
    exc = _normalise(exc)
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


def _json_error(exc: exceptions.APIException) -> JsonResponse:
    return JsonResponse(error_body(str(exc.detail), exc.get_codes()), status=exc.status_code)


def bad_request(request, exception=None):
    """Django-level 400 (e.g. a disallowed Host header, a too large form) as JSON."""
    if isinstance(exception, RequestDataTooBig):
        return _json_error(PayloadTooLarge())
    return _json_error(BadRequest())


def permission_denied(request, exception=None):
    """Django-level 403 as JSON."""
    return _json_error(exceptions.PermissionDenied())


def page_not_found(request, exception=None):
    """Unknown routes as JSON, never an HTML page."""
    return _json_error(NotFound())


def server_error(request):
    """Django-level 500 as JSON."""
    return _json_error(ServerError())
