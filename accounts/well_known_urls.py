"""Routes under /.well-known/ (RFC 8615): the JWKS and the RFC 8414 metadata.

Include at the site's root: ``path(".well-known/", include("accounts.well_known_urls"))``.
"""

from django.urls import path

from accounts import oauth

app_name = "well_known"

urlpatterns = [
    path("jwks.json", oauth.JWKSView.as_view(), name="jwks"),
    path("oauth-authorization-server", oauth.MetadataView.as_view(), name="metadata"),
]
