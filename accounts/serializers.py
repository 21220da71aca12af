"""Input and output shapes of the accounts endpoints (the OpenAPI schema reads them too)."""

from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from accounts.exceptions import CREDENTIALS_REQUIRED, REFRESH_TOKEN_REQUIRED
from accounts.fields import StrictBooleanField, StrictCharField
from accounts.guard import looked_up
from accounts.models import SecurityEvent, Session, SessionKind


def _required(text: str) -> dict:
    """error_messages that give one text for absent, null, empty or non-string."""
    return dict.fromkeys(("required", "null", "blank", "invalid"), text)


# How a user's own record names a staff user who acted on the account.
ADMINISTRATOR = "an administrator"

# A bound on what we hash or decode: a multi-megabyte "password" is refused, not hashed.
MAX_PASSWORD_LENGTH = 1024
MAX_TOKEN_LENGTH = 4096


class UsernameField(StrictCharField):
    """A username as Django's own login form reads it: stripped, then NFKC-normalized."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        # As Django's UsernameField does, leave an over-long value to fail validation as is.
        if self.max_length is not None and len(value) > self.max_length:
            return value
        return looked_up(value)


class CredentialsSerializer(serializers.Serializer):
    """`{username, password}` for login."""

    username = UsernameField(max_length=150, error_messages=_required(CREDENTIALS_REQUIRED))
    password = StrictCharField(
        max_length=MAX_PASSWORD_LENGTH,
        trim_whitespace=False,
        error_messages=_required(CREDENTIALS_REQUIRED),
    )


class SignupSerializer(CredentialsSerializer):
    """`{username, password}` for signup: the username must follow Django's rules."""

    username = UsernameField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        error_messages=_required(CREDENTIALS_REQUIRED),
    )


class RefreshTokenSerializer(serializers.Serializer):
    """`{refresh_token}` for refresh and logout."""

    refresh_token = StrictCharField(
        max_length=MAX_TOKEN_LENGTH, error_messages=_required(REFRESH_TOKEN_REQUIRED)
    )


class LogoutAllSerializer(serializers.Serializer):
    """`{keep_current?}`: true signs out only the other devices."""

    keep_current = StrictBooleanField(required=False, default=False)


class PasswordChangeSerializer(serializers.Serializer):
    """`{old_password, new_password}`."""

    old_password = StrictCharField(max_length=MAX_PASSWORD_LENGTH, trim_whitespace=False)
    new_password = StrictCharField(max_length=MAX_PASSWORD_LENGTH, trim_whitespace=False)


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


class TokenPairSerializer(serializers.Serializer):
    """The new pair returned by login and refresh."""

    access_token = serializers.CharField(source="access")
    refresh_token = serializers.CharField(source="refresh")


class AccessTokenSerializer(serializers.Serializer):
    """`{access_token}`: a cookie-mode refresh, whose refresh token went into the cookie."""

    access_token = serializers.CharField(
        source="access", help_text="JWT, valid for ACCESS_TOKEN_LIFETIME. Keep it in memory."
    )


class BrowserLoginResultSerializer(serializers.Serializer):
    """`{message, access_token}`: a cookie-mode login, whose refresh token went into the cookie."""

    message = serializers.CharField()
    access_token = serializers.CharField(
        help_text="JWT, valid for ACCESS_TOKEN_LIFETIME. Keep it in memory."
    )


class SessionSerializer(serializers.ModelSerializer):
    """One of the caller's sessions, as listed by GET /auth/sessions."""

    kind = serializers.ChoiceField(
        choices=SessionKind.choices,
        read_only=True,
        help_text="`api`: a token pair (this API's login); `admin`: a browser signed in to "
        "the admin, which holds no tokens.",
    )
    current = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Session
        fields = (
            "id",
            "kind",
            "created_at",
            "last_refreshed_at",
            "expires_at",
            "ip_address",
            "device",
            "user_agent",
            "status",
            "current",
        )

    def get_current(self, session: Session) -> bool:
        return session.pk == self.context["current_session"].pk


class SecurityEventSerializer(serializers.ModelSerializer):
    """One event of the caller's own security record, as GET /auth/events lists it.

    An administrator's action on the account names the administrator as such: the
    operator's address, device and name are the admin's record, not the user's.
    """

    door = serializers.SerializerMethodField(
        help_text="Where a password was checked (`login_failed`, `locked_out`): api_login, "
        "admin_login, api_password_change or admin_password_change."
    )
    by_administrator = serializers.SerializerMethodField(
        help_text="True when a staff user did it (e.g. revoked the session)."
    )
    actor = serializers.SerializerMethodField(
        help_text='"an administrator" when a staff user did it, else null.'
    )
    ip_address = serializers.SerializerMethodField(
        help_text="The client's address; null for an administrator's action."
    )
    device = serializers.SerializerMethodField(
        help_text="The client's device (\"Firefox on Ubuntu\"); empty for an administrator's "
        "action."
    )

    class Meta:
        model = SecurityEvent
        fields = (
            "id",
            "kind",
            "reason",
            "created_at",
            "session_id",
            "ip_address",
            "device",
            "door",
            "by_administrator",
            "actor",
        )

    def get_door(self, event: SecurityEvent) -> str | None:
        return event.details.get("door")

    def get_by_administrator(self, event: SecurityEvent) -> bool:
        return event.by_operator()

    def get_actor(self, event: SecurityEvent) -> str | None:
        return ADMINISTRATOR if event.by_operator() else None

    def get_ip_address(self, event: SecurityEvent) -> str | None:
        return None if event.by_operator() else event.ip_address

    def get_device(self, event: SecurityEvent) -> str:
        return "" if event.by_operator() else event.device
