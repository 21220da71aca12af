"""Project-wide endpoints: the health check, the API docs, and the web client's page."""

from csp.constants import NONCE, NONE, SELF
from csp.decorators import csp, csp_update
from django.db import connection
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from todos.models import TITLE_MAX_LENGTH

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


@extend_schema(
    operation_id="health",
    responses={200: inline_serializer("Health", {"status": serializers.CharField()})},
    tags=["health"],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def health(request):
    """200 when the database answers; the exception handler turns an outage into 503."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return Response({"status": "ok"})


# A page, read only: a POST is a 405 from require_safe, not a CSRF failure.
@csrf_exempt
@require_safe
@csp(WEB_CLIENT_POLICY)
def web_client(request):
    """GET /: the web client, plain HTML, CSS and JavaScript under a strict CSP."""
    return render(request, "web/index.html", {"title_max_length": TITLE_MAX_LENGTH})


# Swagger UI under the site's policy, with no inline script: the split view serves its
# start-up script from a URL of its own. Its stylesheet draws icons as data: URIs, and its
# page's one style block carries the nonce (project/templates/api/swagger_ui.html).
api_docs = csp_update({"img-src": ["data:"], "style-src": [NONCE]})(
    # An HTML page: OPTIONS gets 405 (no metadata to render as a template), not a 500.
    SpectacularSwaggerSplitView.as_view(
        url_name="schema", template_name="api/swagger_ui.html", metadata_class=None
    )
)
