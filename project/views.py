"""Project-wide endpoints: the health check and the API docs."""

from csp.constants import NONCE
from csp.decorators import csp_update
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from accounts.keyring import signing_ready
from accounts.schema import error
from project.exceptions import MigrationsPending
from project.readiness import pending_migrations


@extend_schema(
    operation_id="health",
    responses={
        200: inline_serializer("Health", {"status": serializers.CharField()}),
        503: error(
            "The database cannot be reached (`service_unavailable`), is not migrated "
            "(`migrations_pending`), or tokens cannot be signed (`no_signing_key`, "
            "`signing_key_unreadable`)."
        ),
    },
    tags=["health"],
)
@api_view(["GET", "HEAD"])
@authentication_classes([])
@permission_classes([])
def health(request):
    """200 when the database answers, is migrated, and tokens can be signed; else 503, saying
    which: `service_unavailable`, `migrations_pending`, `no_signing_key` or
    `signing_key_unreadable` (a KEY_ENCRYPTION_KEY that opens no key)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if pending_migrations():
        raise MigrationsPending()
    signing_ready()
    return Response({"status": "ok"})


# Swagger UI under the site's policy, with no inline script: the split view serves its
# start-up script from a URL of its own. Its stylesheet draws icons as data: URIs, and its
# page's one style block carries the nonce (project/templates/api/swagger_ui.html).
api_docs = csp_update({"img-src": ["data:"], "style-src": [NONCE]})(
    # An HTML page: OPTIONS gets 405 (no metadata to render as a template), not a 500.
    SpectacularSwaggerSplitView.as_view(
        url_name="schema", template_name="api/swagger_ui.html", metadata_class=None
    )
)
