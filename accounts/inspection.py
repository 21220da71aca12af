"""What another service may ask of a token: is it live (RFC 7662); end its session (RFC 7009).

Both answer from the session row, so an answer is never older than the last revocation.
"""

from dataclasses import dataclass
from uuid import UUID

from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.exceptions import TokenError

from accounts.clients import Client
from accounts.models import RevokeReason, Session, SessionKind
from accounts.tokens import SESSION_CLAIM, SessionAccessToken, SessionRefreshToken

# RFC 7009 §4.1.2: the token type hints a client may send.
TOKEN_TYPE_HINTS = {"access_token": "access", "refresh_token": "refresh"}


@dataclass(frozen=True)
class Inspected:
    """A token that verified, its claims, and the session it names (None if there is none)."""

    claims: dict
    session: Session | None

    @property
    def token_type(self) -> str:
        return self.claims["token_type"]

    def is_active(self) -> bool:
        """Usable now: its session is live, and a refresh token is the session's current one."""
        session, now = self.session, timezone.now()
        if session is None or session.kind != SessionKind.API:
            return False
        if session.is_revoked() or session.is_expired(now) or session.is_idle(now):
            return False
        if not session.user.is_active:
            return False
        if str(session.user_id) != str(self.claims.get(simplejwt.api_settings.USER_ID_CLAIM)):
            return False
        if self.token_type == "refresh":
            return self.claims.get(simplejwt.api_settings.JTI_CLAIM) == session.current_jti
        return True


def inspect(raw: str, hint: str | None = None) -> Inspected | None:
    """Verify `raw` as one of our tokens (the hinted type first) and load its session.

    None for anything that is not a valid, unexpired token of ours: RFC 7662 and 7009
    answer such a token as inactive, or revoke nothing, without saying why.
    """
    first = TOKEN_TYPE_HINTS.get(hint or "", "access")
    classes = {"access": SessionAccessToken, "refresh": SessionRefreshToken}
    for token_type in (first, *(t for t in classes if t != first)):
        try:
            token = classes[token_type](raw)
        except (TokenError, TypeError, ValueError):
            continue
        claims = dict(token.payload)
        try:
            sid = UUID(str(claims[SESSION_CLAIM]))
        except (KeyError, ValueError):
            return None
        session = Session.objects.select_related("user").filter(pk=sid).first()
        return Inspected(claims, session)
    return None


def revoke_token(*, raw: str, hint: str | None, client: Client, by_server=None) -> bool:
    """End the session of a live token (RFC 7009); True if this call ended it.

    A token that does not verify, has expired, or whose session already ended changes
    nothing, and the caller still answers 200: RFC 7009 §2.2.
    """
    inspected = inspect(raw, hint)
    if inspected is None or inspected.session is None or not inspected.is_active():
        return False
    details = {"resource_server": by_server.name} if by_server is not None else {}
    sessions = Session.objects.filter(pk=inspected.session.pk)
    return bool(sessions.revoke(RevokeReason.REVOKED_BY_CLIENT, client=client, **details))
