"""JSON answers for whatever Django itself answers, with DEBUG on or off."""

from django.conf import settings

from project.exceptions import LengthRequired, PayloadTooLarge
from project.handlers import error_for_status, error_response

# The admin is a website: its errors stay its own HTML pages.
HTML_PREFIXES = ("/admin/",)


class JSONErrorMiddleware:
    """The outermost middleware: every error response outside the admin is `{error, code}`.

    The API's views answer their errors through the exception handler. What Django
    answers around them is an HTML page, and a technical one with DEBUG on: a
    disallowed Host (400), an unknown route (404), an unhandled error (500). This
    turns each into the contract's JSON. It also refuses a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE from its Content-Length, before anything reads it,
    so an admin form gets the same 413 as the API, and a body sent without a
    Content-Length (chunked), which Django cannot read, with 411.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _content_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return error_response(PayloadTooLarge())
        if "HTTP_TRANSFER_ENCODING" in request.META:
            # Django reads a body by its Content-Length only: a chunked one would arrive
            # empty, and the client would get an answer about missing fields.
            return error_response(LengthRequired())
        response = self.get_response(request)
        if (
            response.status_code < 400
            or response.get("Content-Type", "").startswith("application/json")
            or request.path_info.startswith(HTML_PREFIXES)
        ):
            return response
        return error_response(error_for_status(response.status_code))


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
