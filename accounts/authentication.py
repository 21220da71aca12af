"""Bearer JWT authentication that refuses tokens of revoked sessions: in no query while the
revocation list in Redis vouches for the session (accounts.revocations), else in one."""

import uuid

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import router
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError

from accounts.exceptions import REALM_HEADER, AccessTokenExpired, InvalidAccessToken, SessionRevoked
from accounts.models import Session, SessionKind
from accounts.revocation_window import may_vouch_for
from accounts.revocations import revocation_list
from accounts.tokens import SESSION_CLAIM, SessionAccessToken


class SessionJWTAuthentication(JWTAuthentication):
    """SimpleJWT's JWTAuthentication, with the user loaded through the token's session.

    Stock JWTAuthentication spends one query on the user row. This spends none while the
    revocation list vouches for the token's session: `request.user` and `request.auth`
    (the Session) then hold only their keys, and load any other field on first use.
    Otherwise it spends the same one query stock does, on session + user.
    """

    def authenticate(self, request):
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header else None
        if raw_token is None:
            # No Bearer token at all: not ours, so DRF answers "JWT token is required".
            return None
        token = self.get_validated_token(raw_token)
        vouched = self.vouched_for(token)
        if vouched is not None:
            return vouched
        session = self.get_session(token)
        return session.user, session

    def vouched_for(self, token: SessionAccessToken):
        """(user, session) without a query, if the revocation list vouches for the session;
        None when the database must decide (no list, an older token, any doubt)."""
        revocations = revocation_list()
        claims = token.payload
        # The session's own end (is_expired, is_idle) is in the token: an access token must
        # not outlive it.
        if revocations is None or not may_vouch_for(claims):
            return None
        try:
            sid = uuid.UUID(str(claims[SESSION_CLAIM]))
            user = user_of(claims[simplejwt.api_settings.USER_ID_CLAIM])
        except (ValueError, TypeError, ValidationError):
            return None
        if not revocations.vouches_for(str(sid)):
            return None
        return user, session_of(sid, user)

    def authenticate_header(self, request) -> str:
        """`Bearer realm="api"`, and `error="invalid_token"` when a token was presented.

        RFC 6750 §3.1: a request with no token gets the bare challenge; one whose token
        was refused is told so. (This project's exception handler writes the same.)
        """
        header = self.get_header(request)
        presented = header is not None and self.get_raw_token(header) is not None
        return REALM_HEADER + (', error="invalid_token"' if presented else "")

    def get_raw_token(self, header: bytes) -> bytes | None:
        """The token of a `Bearer <token>` header; None for any other shape.

        The scheme is matched without regard to case, as RFC 7235 §2.1 has it.
        """
        parts = header.split()
        types = {kind.lower() for kind in simplejwt.api_settings.AUTH_HEADER_TYPES}
        if len(parts) != 2 or parts[0].decode(errors="replace").lower() not in types:
            return None
        return parts[1]

    def get_validated_token(self, raw_token: bytes) -> SessionAccessToken:
        """Verify with SimpleJWT; map its failures onto the contract's texts."""
        try:
            token = SessionAccessToken(raw_token)
        except ExpiredTokenError:
            raise AccessTokenExpired() from None
        except TokenError as exc:
            raise InvalidAccessToken(str(exc.args[0])) from None
        if SESSION_CLAIM not in token or simplejwt.api_settings.USER_ID_CLAIM not in token:
            raise InvalidAccessToken("Token has no session")
        return token

    def get_session(self, token: SessionAccessToken) -> Session:
        """Load session and user in one query and check both are still live."""
        try:
            session = Session.objects.get_with_user(token[SESSION_CLAIM])
        except (Session.DoesNotExist, ValidationError, ValueError, TypeError):
            raise InvalidAccessToken("Unknown session") from None
        if session.kind != SessionKind.API:
            # An admin sign-in is a Django session cookie and never mints a token: a
            # token naming one is forged or misissued, and is refused as unknown.
            raise InvalidAccessToken("Unknown session")
        if str(session.user_id) != str(token[simplejwt.api_settings.USER_ID_CLAIM]):
            raise InvalidAccessToken("Token does not match its session")
        # Before revocation: deactivating a user also revokes its sessions, and
        # "inactive" is the clearer of the two answers.
        if not session.user.is_active:
            raise InvalidAccessToken("User is inactive")
        if session.is_revoked():
            raise SessionRevoked()
        # Past its absolute expiry, or idle past its refresh token's: an access token
        # cannot outlive either.
        if session.is_expired() or session.is_idle():
            raise AccessTokenExpired()
        return session


# --- what a vouched-for request gets instead of rows ------------------------------------


def user_of(user_id):
    """The user `user_id` with only its primary key loaded: every other field loads on first
    use, as a deferred field does (Model.from_db)."""
    model = get_user_model()
    pk = model._meta.pk
    return model.from_db(router.db_for_read(model), [pk.attname], [pk.to_python(user_id)])


def session_of(sid: uuid.UUID, user):
    """The session `sid` (an API session of `user`, from user_of) with only those loaded."""
    return Session.from_db(
        router.db_for_read(Session), ["id", "user_id", "kind"], [sid, user.pk, SessionKind.API]
    )
