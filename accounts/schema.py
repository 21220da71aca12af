"""How the app's authentication classes appear in an OpenAPI schema (drf-spectacular).

Imported by AccountsConfig.ready() when drf-spectacular is installed: a project that
does not document its API with it needs nothing here.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class SessionJWTScheme(OpenApiAuthenticationExtension):
    """SessionJWTAuthentication: HTTP Bearer with a JWT access token."""

    target_class = "accounts.authentication.SessionJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        """An `Authorization: Bearer <access token>` scheme."""
        return build_bearer_security_scheme_object(
            header_name="HTTP_AUTHORIZATION", token_prefix="Bearer", bearer_format="JWT"
        )


class ResourceServerScheme(OpenApiAuthenticationExtension):
    """ResourceServerAuthentication: HTTP Basic with a resource server's client_id and secret."""

    target_class = "accounts.oauth.ResourceServerAuthentication"
    name = "resourceServerBasic"

    def get_security_definition(self, auto_schema):
        """An `Authorization: Basic base64(client_id:client_secret)` scheme."""
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A resource server's client_id and client_secret "
            "(`manage.py add_resource_server`).",
        }
