"""How a session's refresh token turns over: verifying one, judging it, minting, swapping.

The session service (accounts.services) owns the transactions; these are the steps it
takes inside them.
"""

from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.clients import Client, network
from accounts.devices import device_label
from accounts.exceptions import InvalidRefreshToken
from accounts.models import Session, SessionToken
from accounts.tokens import SESSION_CLAIM, SessionRefreshToken, TokenPair, fingerprint, mint_pair

# Verdicts of a refresh that are not refusals.
ROTATE, REPLAY, REUSE = "rotate", "replay", "reuse"
# A forgiven replay must come from the network its rotation answered: these prefixes.
GRACE_IPV4_PREFIX, GRACE_IPV6_PREFIX = 24, 64


def decode_refresh(raw: str) -> SessionRefreshToken:
    """Verify signature, expiry, type and claims; anything wrong is the same 401."""
    try:
        token = SessionRefreshToken(raw)
        UUID(str(token[SESSION_CLAIM]))
        _ = token[simplejwt.api_settings.USER_ID_CLAIM]
    except (TokenError, KeyError, ValueError, TypeError):
        raise InvalidRefreshToken() from None
    return token


def refresh_verdict(session: Session | None, token, now, client: Client | None = None) -> str:
    """Decide a refresh: ROTATE, REPLAY, REUSE, or why it is refused."""
    if session is None:
        return "unknown_session"
    if str(session.user_id) != str(token[simplejwt.api_settings.USER_ID_CLAIM]):
        return "wrong_user"
    if session.is_revoked():
        return "revoked"
    if session.is_expired(now):
        return "expired"
    if not session.user.is_active:
        return "user_inactive"
    jti = token[simplejwt.api_settings.JTI_CLAIM]
    if jti == session.current_jti:
        return ROTATE
    # Only the token the last rotation replaced, and only briefly: anything older, or
    # this one later, is a replay of a stolen copy. previous_jti is always the parent
    # of the current token, so a parent whose successor was rotated again is older.
    grace = timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS)
    rotated = session.previous_jti != ""  # a session never rotated has no parent token
    if (
        grace
        and rotated
        and jti == session.previous_jti
        and now - session.last_refreshed_at < grace
        and served(session, client)
    ):
        return REPLAY
    return REUSE


def grace_client(client: Client | None) -> tuple[str, str]:
    """(network, device) a rotation records of its client: IPv4 /24 or IPv6 /64, device label.

    Coarser than the address, so a phone moving between addresses of one network, or a
    NAT handing out another, still counts as the same client.
    """
    client = client or Client()
    where = network(client.ip, ipv4_prefix=GRACE_IPV4_PREFIX, ipv6_prefix=GRACE_IPV6_PREFIX)
    return where or "", device_label(client.user_agent)


def served(session: Session, client: Client | None) -> bool:
    """Whether `client` looks like the one the session's last rotation answered."""
    return grace_client(client) == (session.refreshed_network, session.refreshed_device)


def mint(session: Session, issued_at, *, parent_jti: str | None = None, kid: str | None = None):
    """The pair a session issues at `issued_at`; a rotation's derives from `parent_jti`.

    `kid` names the key to sign with (the one that signed it before); else the active one.
    """
    # Idle timeout, renewed by each rotation, but never past the session's absolute expiry.
    refresh_expires_at = min(
        issued_at + simplejwt.api_settings.REFRESH_TOKEN_LIFETIME, session.expires_at
    )
    return mint_pair(
        user_id=session.user_id,
        sid=session.id,
        issued_at=issued_at,
        refresh_expires_at=refresh_expires_at,
        parent_jti=parent_jti,
        kid=kid,
    )


def issue(session: Session, now, *, parent_jti: str | None = None):
    """Mint a pair for `session` and record the refresh token's fingerprint, never the token."""
    pair, refresh = mint(session, now, parent_jti=parent_jti)
    record = OutstandingToken.objects.create(
        user_id=session.user_id,
        jti=refresh[simplejwt.api_settings.JTI_CLAIM],
        token=fingerprint(pair.refresh),
        created_at=now,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    return pair, record


def rotate(session: Session, now, client: Client | None = None) -> TokenPair | None:
    """Swap the session's current token for its successor, if nobody swapped it first."""
    pair, token = issue(session, now, parent_jti=session.current_jti)
    refreshed_network, refreshed_device = grace_client(client)
    SessionToken.objects.create(token=token, session=session)
    # Compare-and-swap: holds even where select_for_update is a no-op (SQLite).
    swapped = Session.objects.filter(
        pk=session.pk, current_jti=session.current_jti, revoked_at__isnull=True
    ).update(
        current_token=token,
        current_jti=token.jti,
        previous_jti=session.current_jti,
        last_refreshed_at=now,
        idle_expires_at=pair.refresh_expires_at,
        refreshed_network=refreshed_network,
        refreshed_device=refreshed_device,
        refreshed_kid=pair.kid,
    )
    if swapped != 1:
        transaction.set_rollback(True)
        return None
    BlacklistedToken.objects.create(token_id=session.current_token_id)
    return pair
