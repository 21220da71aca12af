"""The app's OpenAPI pieces (drf-spectacular): the Error shape, the errors every operation can
get, and how its authentication classes appear.

Imported by AccountsConfig.ready() when drf-spectacular is installed, so a project that
documents its API with it gets the schemes; the views use `error()` for their errors.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

BODY_METHODS = ("POST", "PUT", "PATCH")


class ErrorSerializer(serializers.Serializer):
    """Every error body: a human message, a stable code, and per-field details on some 400s."""

    error = serializers.CharField(help_text="Human-readable message.")
    code = serializers.CharField(help_text="Stable snake_case code; see the API docs' table.")
    # Declared fields are popped from the class body, so this name does not shadow .fields.
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For validation errors: the messages of each invalid field.",
    )


def error(description: str) -> OpenApiResponse:
    """An error response with the shared Error body."""
    return OpenApiResponse(ErrorSerializer, description=description)


# The errors any operation of a kind can answer, added by ApiAutoSchema so none is forgotten.
UNAUTHENTICATED = error(
    "No usable access token: `token_required`, `invalid_token`, `token_expired` or "
    "`session_revoked` (its session was logged out, revoked, or the password changed)."
)
TOO_LARGE = error("The body is larger than the API reads: `request_too_large`.")
LENGTH_REQUIRED = error(
    "The body was sent without a Content-Length (chunked): `length_required`; nothing read."
)
NOT_JSON = error("The body is not JSON: `unsupported_media_type`.")
UNAVAILABLE = error("The database cannot be reached; retry later: `service_unavailable`.")

_RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before trying again.",
    }
}
_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": 'Bearer realm="api", plus error="invalid_token" if a token was refused.',
        }
    },
    "429": _RETRY_AFTER,
    "503": _RETRY_AFTER,
}


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, adding the errors an operation gets by its very shape.

    A protected operation can answer 401, one with a body 413 and 415, and every
    operation 503 while the database is away. Views declare only their own errors.
    """

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        """Build the operation, then add the shared error responses and their headers."""
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        shared = {"503": UNAVAILABLE}
        if self._is_protected():
            shared["401"] = UNAUTHENTICATED
        if self.method in BODY_METHODS:
            shared.update({"411": LENGTH_REQUIRED, "413": TOO_LARGE, "415": NOT_JSON})
        responses = operation["responses"]
        error_schema = self.resolve_serializer(ErrorSerializer, "response").ref
        for status_code, response in shared.items():
            responses.setdefault(
                status_code,
                {
                    "description": response.description,
                    "content": {"application/json": {"schema": error_schema}},
                },
            )
        for status_code, headers in _HEADERS.items():
            if status_code in responses:
                responses[status_code].setdefault("headers", {}).update(headers)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _is_protected(self) -> bool:
        """True when the operation needs a Bearer token (no anonymous `{}` requirement)."""
        requirements = self.get_auth()
        return bool(requirements) and {} not in requirements


class SessionJWTScheme(OpenApiAuthenticationExtension):
    """SessionJWTAuthentication: HTTP Bearer with a JWT access token."""

    target_class = "accounts.authentication.SessionJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        """An `Authorization: Bearer <access token>` scheme."""
        return build_bearer_security_scheme_object(
            header_name="HTTP_AUTHORIZATION", token_prefix="Bearer", bearer_format="JWT"
        )


class ResourceServerScheme(OpenApiAuthenticationExtension):
    """ResourceServerAuthentication: HTTP Basic with a resource server's client_id and secret."""

    target_class = "accounts.oauth.ResourceServerAuthentication"
    name = "resourceServerBasic"

    def get_security_definition(self, auto_schema):
        """An `Authorization: Basic base64(client_id:client_secret)` scheme."""
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A resource server's client_id and client_secret "
            "(`manage.py add_resource_server`).",
        }
