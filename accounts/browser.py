"""Cookie mode for browsers: the refresh token in an HttpOnly cookie, behind a CSRF check.

A page must not hold a refresh token where its scripts can read it. On these routes
the refresh token travels only in a cookie that scripts cannot read, scoped to these
routes, and the body carries the access token alone. Because a browser attaches the
cookie by itself, every route here first checks that the request comes from a page
of a trusted origin (CookieCSRFCheck). The JSON routes of accounts.views are unchanged.
"""

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response

from accounts import refresh, services
from accounts.clients import client_of
from accounts.conf import app_settings
from accounts.exceptions import CrossSiteRequest, DuplicateRefreshCookie, InvalidRefreshToken
from accounts.schema import error
from accounts.serializers import (
    AccessTokenSerializer,
    BrowserLoginResultSerializer,
    CredentialsSerializer,
    MessageSerializer,
)
from accounts.tokens import TokenPair
from accounts.views import INVALID_BODY, PublicAPIView, validated

REFRESH_COOKIE = "refresh_token"
# Over TLS the cookie is a host-only `__Host-` cookie (RFC 6265bis §4.1.3.2): a browser
# refuses one set by a sibling subdomain, or set without Secure, or with a Path other
# than `/`. Without TLS (development) no prefix is allowed. Either way it is on `/`, so
# a page served by the API (the web client's) can tell whether there is one.
HOST_PREFIX = "__Host-"
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


@dataclass(frozen=True)
class RefreshCookie:
    """The refresh cookie's name and path, as REFRESH_COOKIE_SECURE decides them."""

    name: str
    path: str


def refresh_cookie() -> RefreshCookie:
    """`__Host-refresh_token` on `/` when Secure; `refresh_token` on the cookie routes if not."""
    if app_settings.REFRESH_COOKIE_SECURE:
        return RefreshCookie(HOST_PREFIX + REFRESH_COOKIE, "/")
    return RefreshCookie(REFRESH_COOKIE, "/")


def read_refresh_cookie(request) -> str:
    """The refresh token in the request's cookie; "" if none.

    Two cookies of that name are refused, not resolved: a browser sends both when
    another site on the same domain planted one (with another Path or Domain), and
    whichever a parser keeps could be the planted session.
    """
    name = refresh_cookie().name
    # Split as Django's parse_cookie does, counting instead of keeping the last.
    names = [
        chunk.split("=", 1)[0].strip() for chunk in request.META.get("HTTP_COOKIE", "").split(";")
    ]
    if names.count(name) > 1:
        raise DuplicateRefreshCookie()
    return request.COOKIES.get(name, "")


def set_refresh_cookie(response: Response, pair: TokenPair) -> None:
    """Put the pair's refresh token in the cookie, for as long as the token lives."""
    remaining = (pair.refresh_expires_at - timezone.now()).total_seconds()
    _write_cookie(response, pair.refresh, max_age=max(0, int(remaining)))


def clear_refresh_cookie(response: Response) -> None:
    """Expire the cookie; a browser drops it only for the same name, path and flags."""
    _write_cookie(response, "", max_age=0)


def _write_cookie(response: Response, value: str, *, max_age: int) -> None:
    """Set the refresh cookie with its one set of flags: setting and clearing must agree."""
    cookie = refresh_cookie()
    response.set_cookie(
        cookie.name,
        value,
        max_age=max_age,
        path=cookie.path,
        secure=app_settings.REFRESH_COOKIE_SECURE,
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
    description=f"`{HOST_PREFIX}{REFRESH_COOKIE}=<refresh token>; Secure; HttpOnly; "
    "SameSite=Strict; Path=/; Max-Age=<its remaining lifetime>`. With REFRESH_COOKIE_SECURE "
    f"off (development over plain HTTP): `{REFRESH_COOKIE}`, not Secure.",
)


def cookie_parameter(*, required: bool) -> OpenApiParameter:
    """The refresh cookie, as the browser sends it back."""
    return OpenApiParameter(
        HOST_PREFIX + REFRESH_COOKIE,
        str,
        OpenApiParameter.COOKIE,
        required=required,
        description="The refresh token that login or refresh set (scripts cannot read it); "
        f"`{REFRESH_COOKIE}` in development. Sent twice (one planted by another site of the "
        "domain): 401 `duplicate_refresh_cookie`, and nothing is read.",
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
        _, pair = services.sign_in(
            request=request, username=data["username"], password=data["password"]
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
                "`invalid_refresh_token`. A replay revokes the whole session. Two refresh "
                "cookies: `duplicate_refresh_cookie`."
            ),
            403: CSRF_REFUSED,
        },
        tags=["browser"],
    )
    def post(self, request):
        try:
            pair = refresh.refresh_session(
                refresh_token=read_refresh_cookie(request), client=client_of(request)
            )
        except (InvalidRefreshToken, DuplicateRefreshCookie) as refused:
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
                description="The refresh cookie with `Max-Age=0`, with its name, path and flags.",
            ),
        ],
        responses={
            200: MessageSerializer,
            401: error(
                "Two refresh cookies were sent: `duplicate_refresh_cookie`. No session was "
                "ended (which one is yours cannot be told); the cookie is cleared."
            ),
            403: CSRF_REFUSED,
        },
        tags=["browser"],
    )
    def post(self, request):
        try:
            refresh_token = read_refresh_cookie(request)
        except DuplicateRefreshCookie as refused:
            # Which session to end cannot be told: end none, and say so.
            response = self.handle_exception(refused)
            clear_refresh_cookie(response)
            return response
        services.logout_by_refresh_token(refresh_token=refresh_token, client=client_of(request))
        response = Response({"message": "Logout successful"})
        clear_refresh_cookie(response)
        return response
