"""Project-wide endpoints: the health check, and the web client's page."""

from django.db import connection
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from todos.models import TITLE_MAX_LENGTH

# The page runs only its own files: no inline script or style, nothing from elsewhere,
# so an injected string can neither run nor send anything away.
WEB_CLIENT_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


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
def web_client(request):
    """GET /: the web client, plain HTML, CSS and JavaScript under a strict CSP."""
    response = render(request, "web/index.html", {"title_max_length": TITLE_MAX_LENGTH})
    response["Content-Security-Policy"] = WEB_CLIENT_POLICY
    return response
