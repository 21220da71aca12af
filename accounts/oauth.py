"""What other services use: the JWKS, RFC 8414 metadata, introspection (7662), revocation (7009).

Introspection is for registered resource servers (HTTP Basic, `manage.py
add_resource_server`). Revocation takes any token of ours: holding it proves the right
to end its session, as logout does. Their errors are OAuth's (RFC 6749 §5.2):
`{"error": <code>, "error_description": <text>}`, with this API's `code` beside them.
"""

from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BasicAuthentication
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import keys
from accounts.clients import client_of, network
from accounts.conf import app_settings
from accounts.inspection import TOKEN_TYPE_HINTS, inspect, revoke_token
from accounts.models import ResourceServer, SigningKey
from accounts.throttles import WindowThrottle
from accounts.views import AppAPIView

BASIC_REALM = 'Basic realm="resource servers"'


class OAuthError(exceptions.APIException):
    """An RFC 6749 §5.2 error: `error` is the code, `error_description` the text."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, code: str, description: str, status_code: int | None = None) -> None:
        super().__init__(description, code)
        self.oauth_code = code
        if status_code is not None:
            self.status_code = status_code


class ResourceServerAuthentication(BasicAuthentication):
    """HTTP Basic with a resource server's client_id and secret; `request.auth` is the server."""

    www_authenticate_realm = "resource servers"

    def authenticate_credentials(self, userid, password, request=None):
        server = ResourceServer.objects.authenticated(userid, password)
        if server is None:
            raise OAuthError("invalid_client", "Client authentication failed", 401)
        return AnonymousUser(), server


class IsResourceServer(BasePermission):
    """Only a registered, enabled resource server may introspect."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ResourceServer):
            raise OAuthError("invalid_client", "Client authentication is required", 401)
        return True


class PerClientThrottle(WindowThrottle):
    """THROTTLE_RATES[scope] per resource server, or per address for an anonymous caller.

    It fails open: while Redis is away, a resource server still learns the truth about a
    session, and anyone holding a token can still end its session.
    """

    scope = ""
    fail_open = True

    def rate(self) -> str:
        return app_settings.THROTTLE_RATES[self.scope]

    def key(self, request, view) -> str:
        server = request.auth if isinstance(request.auth, ResourceServer) else None
        ident = f"client:{server.client_id}" if server else f"ip:{network(client_of(request).ip)}"
        return f"throttle:{self.scope}:{ident}"


class IntrospectionThrottle(PerClientThrottle):
    scope = "introspection"


class RevocationThrottle(PerClientThrottle):
    scope = "revocation"


class OAuthView(AppAPIView):
    """A form-encoded RFC endpoint: OAuth's error bodies, never cached."""

    parser_classes = (FormParser,)
    authentication_classes = (ResourceServerAuthentication,)

    def handle_exception(self, exc):
        # Whatever went wrong with the client's credentials or its form, say it OAuth's way.
        if isinstance(exc, (exceptions.AuthenticationFailed, exceptions.NotAuthenticated)):
            if not isinstance(exc, OAuthError):
                exc = OAuthError("invalid_client", "Client authentication failed", 401)
        elif isinstance(exc, (exceptions.UnsupportedMediaType, exceptions.ParseError)):
            exc = OAuthError(
                "invalid_request",
                "Send the parameters form-encoded (application/x-www-form-urlencoded)",
            )
        response = super().handle_exception(exc)
        if isinstance(exc, OAuthError):
            response.data = {
                "error": exc.oauth_code,
                "error_description": str(exc.detail),
                "code": exc.oauth_code,
            }
            if response.status_code == status.HTTP_401_UNAUTHORIZED:
                response["WWW-Authenticate"] = BASIC_REALM
        add_never_cache_headers(response)
        return response

    def get_authenticate_header(self, request) -> str:
        return BASIC_REALM

    def token_field(self, request) -> tuple[str, str | None]:
        """The form's `token` and `token_type_hint`; 400 invalid_request without a token."""
        data = request.data  # a QueryDict for a form, a plain dict for no body at all
        for name in ("token", "token_type_hint"):
            if hasattr(data, "getlist") and len(data.getlist(name)) > 1:
                # RFC 6749 §3.1: a parameter sent twice is a malformed request.
                raise OAuthError("invalid_request", f"The {name} parameter is sent more than once")
        token = request.data.get("token")
        if not isinstance(token, str) or not token:
            raise OAuthError("invalid_request", "The token parameter is required")
        hint = request.data.get("token_type_hint")
        if hint is not None and hint not in TOKEN_TYPE_HINTS:
            raise OAuthError(
                "unsupported_token_type",
                "token_type_hint must be access_token or refresh_token",
            )
        return token, hint


TOKEN_FORM = inline_serializer(
    "TokenForm",
    {
        "token": serializers.CharField(help_text="An access or refresh token of this API."),
        "token_type_hint": serializers.ChoiceField(choices=list(TOKEN_TYPE_HINTS), required=False),
    },
)
OAUTH_ERROR = inline_serializer(
    "OAuthError",
    {
        "error": serializers.CharField(help_text="RFC 6749 §5.2 code, e.g. invalid_request."),
        "error_description": serializers.CharField(),
        "code": serializers.CharField(help_text="The same code."),
    },
)


class IntrospectionView(OAuthView):
    """POST /auth/introspect (RFC 7662): is this token live, and whose is it."""

    permission_classes = (IsResourceServer,)
    throttle_classes = (IntrospectionThrottle,)

    @extend_schema(
        operation_id="introspect",
        description="For registered resource servers (HTTP Basic: client_id and secret from "
        "`manage.py add_resource_server`). Answers from the session, so a token whose session "
        "ended a moment ago is `active: false`. Rate-limited per client.",
        request={"application/x-www-form-urlencoded": TOKEN_FORM},
        responses={
            200: inline_serializer(
                "Introspection",
                {
                    "active": serializers.BooleanField(),
                    "sub": serializers.CharField(required=False),
                    "sid": serializers.UUIDField(required=False),
                    "exp": serializers.IntegerField(required=False),
                    "iat": serializers.IntegerField(required=False),
                    "jti": serializers.CharField(required=False),
                    "token_type": serializers.CharField(required=False),
                    "iss": serializers.CharField(required=False),
                },
            ),
            400: OpenApiResponse(OAUTH_ERROR, description="No token: `invalid_request`."),
            401: OpenApiResponse(OAUTH_ERROR, description="Bad credentials: `invalid_client`."),
            429: OpenApiResponse(description="Over the client's rate: `throttled`."),
        },
        tags=["other services"],
    )
    def post(self, request):
        token, hint = self.token_field(request)
        inspected = inspect(token, hint)
        if inspected is None or not inspected.is_active():
            return Response({"active": False})
        claims = inspected.claims
        answer = {"active": True}
        for name in ("sub", "sid", "exp", "iat", "jti", "token_type", "iss", "aud"):
            if name in claims:
                answer[name] = claims[name]
        return Response(answer)


class RevocationView(OAuthView):
    """POST /auth/revoke (RFC 7009): end the session of an access or refresh token."""

    permission_classes = (AllowAny,)
    throttle_classes = (RevocationThrottle,)

    @extend_schema(
        operation_id="revoke",
        description="Ends the session of the token given, whichever kind: every token of that "
        "session is refused from the next request. 200 also for a token that is unknown, "
        "expired or already revoked (RFC 7009 §2.2). A resource server may authenticate "
        "(HTTP Basic); anyone holding a token may revoke it.",
        request={"application/x-www-form-urlencoded": TOKEN_FORM},
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="`{}`, whatever the token."),
            400: OpenApiResponse(
                OAUTH_ERROR,
                description="No token: `invalid_request`; a hint other than access_token or "
                "refresh_token: `unsupported_token_type`.",
            ),
            401: OpenApiResponse(OAUTH_ERROR, description="Bad credentials: `invalid_client`."),
            429: OpenApiResponse(description="Too many revocations: `throttled`."),
        },
        tags=["other services"],
    )
    def post(self, request):
        token, hint = self.token_field(request)
        server = request.auth if isinstance(request.auth, ResourceServer) else None
        revoke_token(raw=token, hint=hint, client=client_of(request), by_server=server)
        return Response({})


def absolute(route: str) -> str:
    """A route of this app as an absolute URL under the configured issuer, never the Host."""
    return app_settings.ISSUER + reverse(route)


class JWKSView(APIView):
    """GET /.well-known/jwks.json (RFC 7517): the keys whose signatures still count."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="jwks",
        description="The public keys that verify this API's tokens and events: the active "
        "one, a staged one before it signs, and retired ones until the last token they "
        "signed has expired. Cache it for `max-age` (JWKS_MAX_AGE); on an unknown `kid`, "
        "fetch it again. Empty with an HS* algorithm (a shared secret is never published).",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description='`{"keys": [...]}`')},
        tags=["other services"],
    )
    def get(self, request):
        published = []
        if not app_settings.SIGNING_ALGORITHM.startswith("HS"):
            order = {"active": 0, "staged": 1, "previous": 2, "retired": 3}
            rows = sorted(SigningKey.objects.verifying(), key=lambda row: order[row.state])
            published = [
                keys.public_jwk(row.public_key, kid=row.kid, algorithm=row.algorithm)
                for row in rows
            ]
        response = Response({"keys": published})
        patch_cache_control(response, public=True, max_age=app_settings.JWKS_MAX_AGE)
        return response


class MetadataView(APIView):
    """GET /.well-known/oauth-authorization-server (RFC 8414): where everything is."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        operation_id="authorization_server_metadata",
        description="RFC 8414 metadata: the issuer, the JWKS, and the introspection and "
        "revocation endpoints, as absolute URLs built from the configured issuer.",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT)},
        tags=["other services"],
    )
    def get(self, request):
        response = Response(
            {
                "issuer": app_settings.ISSUER,
                "jwks_uri": absolute("well_known:jwks"),
                "introspection_endpoint": absolute("accounts:introspect"),
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
                "revocation_endpoint": absolute("accounts:revoke"),
                "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
                # No OAuth authorization or token endpoint: sign-in is /auth/login.
                "response_types_supported": [],
                "grant_types_supported": [],
                "token_endpoint_auth_methods_supported": [],
            }
        )
        patch_cache_control(response, public=True, max_age=app_settings.JWKS_MAX_AGE)
        return response
