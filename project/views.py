"""Project-wide endpoints: the health check."""

from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response


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
