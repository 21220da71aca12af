"""Response shapes of the accounts endpoints, for the OpenAPI schema only."""

from rest_framework import serializers


class MessageSerializer(serializers.Serializer):
    """`{message}`: signup, logout and password change."""

    message = serializers.CharField()


class LoginResultSerializer(serializers.Serializer):
    """`{message, access_token, refresh_token}`: a successful login."""

    message = serializers.CharField()
    access_token = serializers.CharField(help_text="JWT, valid for ACCESS_TOKEN_LIFETIME.")
    refresh_token = serializers.CharField(help_text="Send it in the body of /auth/refresh.")


class LogoutAllResultSerializer(serializers.Serializer):
    """`{message, revoked}`: how many sessions logout-all ended."""

    message = serializers.CharField()
    revoked = serializers.IntegerField(min_value=0)
