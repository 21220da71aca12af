"""JSON answers for whatever Django itself answers, with DEBUG on or off."""

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware

from project.exceptions import LengthRequired, PayloadTooLarge, ServiceUnavailable
from project.handlers import error_for_status, error_response, is_unavailable

# The admin is a website: its errors stay its own HTML pages.
HTML_PREFIXES = ("/admin/",)

# The admin's answer to a request no form could send (a NUL in a value).
BAD_REQUEST_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Bad request</title>"
    "<h1>Bad request</h1><p>The request carried a character no field can hold.</p></html>"
)
# The admin's page while the database or Redis is away: short, and it changed nothing.
UNAVAILABLE_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8>"
    "<title>Service briefly unavailable</title>"
    "<h1>Service briefly unavailable</h1>"
    "<p>Nothing was changed. Please try again in a few seconds.</p></html>"
)


class JSONErrorMiddleware:
    """The outermost middleware: every error response outside the admin is `{error, code}`.

    The API's views answer their errors through the exception handler. What Django
    answers around them is an HTML page, and a technical one with DEBUG on: a
    disallowed Host (400), an unknown route (404), an unhandled error (500). This
    turns each into the contract's JSON. It also refuses a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE from its Content-Length, before anything reads it,
    so an admin form gets the same 413 as the API, and a body sent without a
    Content-Length (chunked), which Django cannot read, with 411.

    Every response this writes carries the same security headers as any other, added
    by the very middleware that adds them to the rest (nosniff, X-Frame-Options,
    Referrer-Policy, HSTS behind TLS, the Content-Security-Policy): being outermost,
    nothing below sees them.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.header_middleware = (
            SecurityMiddleware(get_response),
            CSPMiddleware(get_response),
            XFrameOptionsMiddleware(get_response),
        )

    def __call__(self, request):
        if _content_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return self.secured(request, error_response(PayloadTooLarge()))
        if "HTTP_TRANSFER_ENCODING" in request.META:
            # Django reads a body by its Content-Length only: a chunked one would arrive
            # empty, and the client would get an answer about missing fields.
            return self.secured(request, error_response(LengthRequired()))
        if _is_html(request) and _carries_nul(request):
            # The admin's forms and filters pass values to the database as they are, and
            # PostgreSQL text cannot hold a NUL: refuse it here, not with a 500 there.
            return self.secured(request, HttpResponseBadRequest(BAD_REQUEST_PAGE))
        response = self.get_response(request)
        if (
            response.status_code < 400
            or response.get("Content-Type", "").startswith("application/json")
            or _is_html(request)
        ):
            return self.secured(request, response)
        return self.secured(request, error_response(error_for_status(response.status_code)))

    def process_exception(self, request, exception):
        """A view that lost the database or Redis: 503 (retry), not Django's 500 page.

        The API's own views answer this through the exception handler; this covers the
        rest, the admin's forms above all (its login and password forms count attempts
        in Redis): a short page that says nothing was changed.
        """
        if not is_unavailable(exception):
            return None
        if _is_html(request):
            response = HttpResponse(UNAVAILABLE_PAGE, status=503)
        else:
            response = error_response(ServiceUnavailable())
        response["Retry-After"] = str(ServiceUnavailable.wait)
        return response

    def secured(self, request, response):
        """`response` with every security header a normal response would carry."""
        for middleware in self.header_middleware:
            response = middleware.process_response(request, response)
        return response


def _carries_nul(request) -> bool:
    """A NUL anywhere in the query string or a form's fields and values."""
    fields = [*request.GET.lists()]
    if request.method == "POST" and request.content_type != "application/json":
        fields += request.POST.lists()
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in fields)


def _is_html(request) -> bool:
    return request.path_info.startswith(HTML_PREFIXES)


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
