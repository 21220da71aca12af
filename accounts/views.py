"""Thin views over the services: sign up, sign in, refresh, log out, change the password."""

from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services, users
from accounts.authentication import SessionJWTAuthentication
from accounts.clients import client_of
from accounts.exceptions import (
    REALM_HEADER,
    AccessTokenRequired,
    UnsupportedMediaType,
)
from accounts.parsers import StrictJSONParser
from accounts.refresh import refresh_session
from accounts.schema import error
from accounts.serializers import (
    CredentialsSerializer,
    LoginResultSerializer,
    MessageSerializer,
    PasswordChangeSerializer,
    RefreshTokenSerializer,
    SignupSerializer,
    TokenPairSerializer,
)

INVALID_BODY = error(
    "A field is missing, null, of the wrong type or too long (`invalid`, `required`, "
    "`null`, `blank`, `max_length`...); details per field under `fields`."
)


def validated(serializer_class, request) -> dict:
    """Validate the JSON body with `serializer_class`, raising the API's 400 if wrong."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def token_response(data: dict) -> Response:
    """An answer that carries tokens: no cache may store it (RFC 6749 §5.1)."""
    response = Response(data)
    add_never_cache_headers(response)
    return response


class AppAPIView(APIView):
    """Every endpoint of the app: a method it does not serve is 405 before anything else."""

    def initial(self, request, *args, **kwargs):
        # DRF authenticates and checks permissions first: a wrong method would otherwise
        # be a 401 or a 403, and a cookie route's CSRF check would answer a TRACE.
        if request.method.lower() not in self.http_method_names or not hasattr(
            self, request.method.lower()
        ):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)


class JSONAPIView(AppAPIView):
    """The app's endpoints read JSON only, whatever the project's DRF defaults say."""

    parser_classes = (StrictJSONParser,)


class SessionAPIView(JSONAPIView):
    """An endpoint for a signed-in session: its access token, whatever the project's defaults.

    Explicit, so a project whose DRF defaults let anyone in (DRF's own: AllowAny) still
    guards these routes: `request.auth` is the caller's Session.
    """

    authentication_classes = (SessionJWTAuthentication,)
    permission_classes = (IsAuthenticated,)


class PublicAPIView(JSONAPIView):
    """An endpoint that takes no access token; a stale Authorization header is ignored."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get_authenticate_header(self, request) -> str:
        # Keeps DRF from turning this view's 401s (bad credentials) into 403s.
        return REALM_HEADER


class SignupView(PublicAPIView):
    """POST /auth/signup: create an account."""

    @extend_schema(
        operation_id="signup",
        request=SignupSerializer,
        responses={
            201: MessageSerializer,
            400: error(
                "Missing or invalid username or password (`invalid`, `required`...), "
                "`username_taken`, or a password Django's validators refuse (`invalid_password`)."
            ),
            429: error("Too many signups from this address: `throttled`."),
        },
        tags=["auth"],
    )
    def post(self, request):
        data = validated(SignupSerializer, request)
        users.sign_up(
            username=data["username"], password=data["password"], client=client_of(request)
        )
        return Response(
            {"message": "Signup successful. Please log in to continue."},
            status=status.HTTP_201_CREATED,
        )


class LoginView(PublicAPIView):
    """POST /auth/login: open a session and return its first token pair."""

    @extend_schema(
        operation_id="login",
        request=CredentialsSerializer,
        responses={
            200: LoginResultSerializer,
            400: INVALID_BODY,
            401: error("Unknown user or wrong password: `invalid_credentials`."),
            429: error(
                "Too many sign-in attempts from this address, or wrong passwords for this "
                "username from it: `throttled`. Even the right password waits (Retry-After)."
            ),
        },
        tags=["auth"],
    )
    def post(self, request):
        data = validated(CredentialsSerializer, request)
        _, pair = services.sign_in(
            request=request, username=data["username"], password=data["password"]
        )
        return token_response({"message": "Login successful", **TokenPairSerializer(pair).data})


class RefreshView(PublicAPIView):
    """POST /auth/refresh: rotate the refresh token and return a new pair."""

    @extend_schema(
        operation_id="refresh",
        request=RefreshTokenSerializer,
        responses={
            200: TokenPairSerializer,
            400: INVALID_BODY,
            401: error(
                "Bad, expired, blacklisted, replayed or revoked refresh token, or not a "
                "refresh token: `invalid_refresh_token`. A replay revokes the whole session."
            ),
        },
        tags=["auth"],
    )
    def post(self, request):
        data = validated(RefreshTokenSerializer, request)
        pair = refresh_session(refresh_token=data["refresh_token"], client=client_of(request))
        return token_response(TokenPairSerializer(pair).data)


class LogoutView(SessionAPIView):
    """POST /auth/logout: end this session; both of its tokens die at once."""

    def initial(self, request, *args, **kwargs):
        # The contract checks for a JSON body before it looks at the token.
        if request.method == "POST" and not request.content_type.startswith("application/json"):
            raise UnsupportedMediaType()
        super().initial(request, *args, **kwargs)

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise AccessTokenRequired()
        super().permission_denied(request, message, code)

    @extend_schema(
        operation_id="logout",
        request=RefreshTokenSerializer,
        responses={
            200: MessageSerializer,
            400: INVALID_BODY,
            401: error(
                "No usable access token (`access_token_required`, `invalid_token`, "
                "`token_expired`, `session_revoked`), or a refresh token that is not valid "
                "(`invalid_refresh_token`)."
            ),
            403: error(
                "The refresh token belongs to another session: `refresh_token_mismatch`. "
                "That session stays alive."
            ),
        },
        tags=["auth"],
    )
    def post(self, request):
        data = validated(RefreshTokenSerializer, request)
        services.logout(
            session=request.auth,
            refresh_token=data["refresh_token"],
            client=client_of(request),
        )
        return Response({"message": "Logout successful"})


class PasswordChangeView(SessionAPIView):
    """POST /auth/password: change the password; every other session ends."""

    @extend_schema(
        operation_id="password_change",
        request=PasswordChangeSerializer,
        responses={
            200: MessageSerializer,
            400: error(
                "Missing or invalid fields (`invalid`, `required`...), `wrong_password`, or a "
                "new password Django's validators refuse (`invalid_password`)."
            ),
            429: error(
                "Too many wrong old passwords for this user from this address: `throttled`. "
                "Even the right one waits (Retry-After)."
            ),
        },
        tags=["auth"],
    )
    def post(self, request):
        data = validated(PasswordChangeSerializer, request)
        users.change_password(
            user=request.user,
            session=request.auth,
            old_password=data["old_password"],
            new_password=data["new_password"],
            client=client_of(request),
        )
        return Response({"message": "Password changed"})
