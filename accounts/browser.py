"""Cookie mode for browsers: the refresh token in an HttpOnly cookie, behind a CSRF check.

A page must not hold a refresh token where its scripts can read it. On these routes
the refresh token travels only in a cookie that scripts cannot read, scoped to these
routes, and the body carries the access token alone. Because a browser attaches the
cookie by itself, every route here first checks that the request comes from a page
of a trusted origin (CookieCSRFCheck). The JSON routes of accounts.views are unchanged.
"""

from django.conf import settings
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response

from accounts import services
from accounts.clients import client_of
from accounts.exceptions import CrossSiteRequest, InvalidRefreshToken
from accounts.serializers import (
    AccessTokenSerializer,
    BrowserLoginResultSerializer,
    CredentialsSerializer,
    MessageSerializer,
)
from accounts.tokens import TokenPair
from accounts.views import INVALID_BODY, PublicAPIView, validated
from project.schema import error

REFRESH_COOKIE = "refresh_token"
# The cookie goes only to the routes below, never to the API's other routes or pages.
REFRESH_COOKIE_PATH = "/auth/browser/"
# A header no cross-site form or link can send, and fetch() only after a CORS
# preflight, which this API never grants.
CSRF_HEADER, CSRF_HEADER_VALUE = "X-Requested-With", "fetch"


class CookieCSRFCheck(BasePermission):
    """Refuse a request without `X-Requested-With: fetch` or from an untrusted Origin (403).

    SameSite=Strict already keeps the cookie off requests from other sites; this also
    stops sibling subdomains (same site, other origin) and browsers that ignore SameSite.
    Nothing is read or written before it passes.
    """

    def has_permission(self, request, view) -> bool:
        if request.headers.get(CSRF_HEADER) != CSRF_HEADER_VALUE:
            raise CrossSiteRequest()
        if not is_trusted_origin(request.headers.get("Origin", ""), request):
            raise CrossSiteRequest()
        return True


def is_trusted_origin(origin: str, request) -> bool:
    """True for the request's own origin, or one in CSRF_TRUSTED_ORIGINS (`*.` subdomains too)."""
    if not origin:
        return False
    if origin == f"{request.scheme}://{request.get_host()}":
        return True
    scheme, _, host = origin.partition("://")
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        trusted_scheme, _, trusted_host = trusted.partition("://")
        if origin == trusted or (
            # As Django reads a wildcard entry: https://*.example.com, any subdomain.
            trusted_host.startswith("*.")
            and scheme == trusted_scheme
            and host.endswith(trusted_host[1:])
        ):
            return True
    return False


def set_refresh_cookie(response: Response, pair: TokenPair) -> None:
    """Put the pair's refresh token in the cookie, for as long as the token lives."""
    remaining = (pair.refresh_expires_at - timezone.now()).total_seconds()
    _write_cookie(response, pair.refresh, max_age=max(0, int(remaining)))


def clear_refresh_cookie(response: Response) -> None:
    """Expire the cookie; a browser drops it only for the same name, path and flags."""
    _write_cookie(response, "", max_age=0)


def _write_cookie(response: Response, value: str, *, max_age: int) -> None:
    """Set the refresh cookie with its one set of flags: setting and clearing must agree."""
    response.set_cookie(
        REFRESH_COOKIE,
        value,
        max_age=max_age,
        path=REFRESH_COOKIE_PATH,
        secure=settings.REFRESH_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )
    # A response that carries a token is never stored by a cache.
    add_never_cache_headers(response)


class CookieView(PublicAPIView):
    """A cookie-mode route: no access token, and only from a page of a trusted origin."""

    # AllowAny: no access token (the schema marks the route public); then the CSRF check.
    permission_classes = (AllowAny, CookieCSRFCheck)


CSRF_REFUSED = error(
    "No `X-Requested-With: fetch` header, or an `Origin` that is neither this API's own "
    "nor in CSRF_TRUSTED_ORIGINS: `csrf_failed`. Nothing was read or changed."
)
CSRF_HEADER_PARAMETER = OpenApiParameter(
    CSRF_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=True,
    enum=[CSRF_HEADER_VALUE],
    description="Required with a trusted `Origin` (sent by the browser), against CSRF.",
)
SETS_COOKIE = OpenApiParameter(
    "Set-Cookie",
    str,
    OpenApiParameter.HEADER,
    response=[200],
    description=f"`{REFRESH_COOKIE}=<refresh token>; HttpOnly; SameSite=Strict; "
    f"Path={REFRESH_COOKIE_PATH}; Max-Age=<its remaining lifetime>`, and `Secure` "
    "unless REFRESH_COOKIE_SECURE is off.",
)


def cookie_parameter(*, required: bool) -> OpenApiParameter:
    """The refresh cookie, as the browser sends it back."""
    return OpenApiParameter(
        REFRESH_COOKIE,
        str,
        OpenApiParameter.COOKIE,
        required=required,
        description="The refresh token that login or refresh set (scripts cannot read it).",
    )


class BrowserLoginView(CookieView):
    """POST /auth/browser/login: open a session; the refresh token goes into the cookie."""

    @extend_schema(
        operation_id="browser_login",
        description="Like /auth/login, with the same texts and brute-force limits, but the "
        "refresh token is set in an HttpOnly cookie instead of the body.",
        request=CredentialsSerializer,
        parameters=[CSRF_HEADER_PARAMETER, SETS_COOKIE],
        responses={
            200: BrowserLoginResultSerializer,
            400: INVALID_BODY,
            401: error("Unknown user or wrong password: `invalid_credentials`."),
            403: CSRF_REFUSED,
            429: error(
                "Too many sign-in attempts from this address, or wrong passwords for this "
                "username from it: `throttled`. Shared with /auth/login."
            ),
        },
        tags=["browser"],
    )
    def post(self, request):
        data = validated(CredentialsSerializer, request)
        _, pair = services.session_login(
            username=data["username"], password=data["password"], client=client_of(request)
        )
        response = Response({"message": "Login successful", **AccessTokenSerializer(pair).data})
        set_refresh_cookie(response, pair)
        return response


class BrowserRefreshView(CookieView):
    """POST /auth/browser/refresh: rotate the cookie's refresh token; a new access token."""

    @extend_schema(
        operation_id="browser_refresh",
        description="Like /auth/refresh, with the refresh token read from the cookie (no "
        "body). Within REFRESH_REUSE_GRACE_SECONDS of a rotation, the token it replaced "
        "gets the very same new pair again, so two tabs refreshing at once both keep it.",
        request=None,
        parameters=[CSRF_HEADER_PARAMETER, cookie_parameter(required=True), SETS_COOKIE],
        responses={
            200: AccessTokenSerializer,
            401: error(
                "No cookie, or a bad, expired, replayed or revoked refresh token in it: "
                "`invalid_refresh_token`. A replay revokes the whole session."
            ),
            403: CSRF_REFUSED,
        },
        tags=["browser"],
    )
    def post(self, request):
        try:
            pair = services.session_refresh(
                refresh_token=request.COOKIES.get(REFRESH_COOKIE, ""), client=client_of(request)
            )
        except InvalidRefreshToken as refused:
            # A refused refresh token is dead for good (bad, expired, replayed, or of an
            # ended session): drop it, rather than have the page send it on every load.
            response = self.handle_exception(refused)
            clear_refresh_cookie(response)
            return response
        response = Response(AccessTokenSerializer(pair).data)
        set_refresh_cookie(response, pair)
        return response


class BrowserLogoutView(CookieView):
    """POST /auth/browser/logout: end the cookie's session and clear the cookie."""

    @extend_schema(
        operation_id="browser_logout",
        description="Ends the session of the refresh token in the cookie (its access tokens "
        "die at once) and clears the cookie. Needs no access token. Idempotent: with no "
        "cookie, or one of a session already ended or not valid, it still clears it.",
        request=None,
        parameters=[
            CSRF_HEADER_PARAMETER,
            cookie_parameter(required=False),
            OpenApiParameter(
                "Set-Cookie",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description=f"`{REFRESH_COOKIE}=; Max-Age=0`, with the cookie's path and flags.",
            ),
        ],
        responses={200: MessageSerializer, 403: CSRF_REFUSED},
        tags=["browser"],
    )
    def post(self, request):
        services.session_end(
            refresh_token=request.COOKIES.get(REFRESH_COOKIE, ""), client=client_of(request)
        )
        response = Response({"message": "Logout successful"})
        clear_refresh_cookie(response)
        return response
