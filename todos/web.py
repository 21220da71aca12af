"""The web client at /: plain HTML, CSS and JavaScript for the todos and the sessions."""

from csp.constants import NONE, SELF
from csp.decorators import csp
from django.conf import settings
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from accounts.browser import refresh_cookie

# The page runs only its own files: no inline script or style, nothing from elsewhere,
# so an injected string can neither run nor send anything away. Its whole policy, not
# the site's default (settings.CONTENT_SECURITY_POLICY): loosening the admin's must never
# loosen this one.
WEB_CLIENT_POLICY = {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF],
    "img-src": [SELF],
    "connect-src": [SELF],
    "object-src": [NONE],
    "base-uri": [NONE],
    "form-action": [NONE],
    "frame-ancestors": [NONE],
}


# A page, read only: a POST is a 405 from require_safe, not a CSRF failure.
@csrf_exempt
@require_safe
@csp(WEB_CLIENT_POLICY)
def web_client(request):
    """GET /: the web client, under a strict CSP.

    The page says whether this browser holds a refresh cookie (it cannot read the
    cookie itself): without one it shows the sign-in form at once instead of asking the
    API, so a first visit logs no refused request.
    """
    context = {
        "title_max_length": settings.TODO_TITLE_MAX_LENGTH,
        "has_session": refresh_cookie().name in request.COOKIES,
    }
    return render(request, "todos/web_client.html", context)
