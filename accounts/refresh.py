"""Refreshing a session: rotate its refresh token, forgive an honest retry, end it on a replay.

`refresh_session` owns its transaction and takes every step on the session row it
locks: of N concurrent refreshes of one token, the first rotates and the others wait,
then find their token is the one just replaced and get the very same new pair (within
the grace window, from the client the rotation answered). Anything older, or from
anywhere else, is a replay of a stolen copy (RFC 9700 §4.14.2): the session ends.
"""

from datetime import timedelta
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.clients import Client, network
from accounts.conf import app_settings
from accounts.devices import device_label
from accounts.events import LoggedOnly, record
from accounts.exceptions import InvalidRefreshToken
from accounts.models import EventKind, RevokeReason, Session, SessionKind
from accounts.tokens import SESSION_CLAIM, SessionRefreshToken, TokenPair, fingerprint, mint_pair

# A forgiven replay must come from the network its rotation answered: these prefixes.
GRACE_IPV4_PREFIX, GRACE_IPV6_PREFIX = 24, 64


def refresh_session(*, refresh_token: str, client: Client | None = None) -> TokenPair:
    """The new pair for `refresh_token`; InvalidRefreshToken (401) for anything else."""
    token = decode_refresh(refresh_token)
    try:
        with transaction.atomic():
            session, pair, outcome = _decide(token, client or Client())
    except IntegrityError:
        # Two rotations of one parent mint the same successor jti, so the second insert
        # fails on its unique index: only possible without the row lock, and a refusal.
        session, pair, outcome = None, None, "lost_race"
    if pair is None:
        if session is not None:
            record(
                LoggedOnly.REFRESH_REFUSED,
                user=session.user_id,
                sid=session.id,
                client=client,
                reason=outcome,
            )
        raise InvalidRefreshToken()
    record(LoggedOnly.REFRESH, user=session.user_id, sid=session.id, client=client)
    return pair


def decode_refresh(raw: str) -> SessionRefreshToken:
    """Verify signature, expiry, type and claims; anything wrong is the same 401."""
    try:
        token = SessionRefreshToken(raw)
        UUID(str(token[SESSION_CLAIM]))
        _ = token[simplejwt.api_settings.USER_ID_CLAIM]
    except (TokenError, KeyError, ValueError, TypeError):
        raise InvalidRefreshToken() from None
    return token


def _decide(token, client: Client):
    """Lock the session row, judge the token, and take the step: (session, pair, outcome)."""
    session = (
        Session.objects.select_related("user")
        # Lock the session row only: the user row stays free for logins and saves.
        .select_for_update(of=("self",))
        # An admin sign-in has no tokens: a token naming one is refused as unknown.
        .filter(pk=token[SESSION_CLAIM], kind=SessionKind.API)
        .first()
    )
    # Read the clock holding the lock, so rotation times follow the order of the
    # rotations, and a refresh that waited is judged by when it got its turn.
    now = timezone.now()
    refused = _refusal(session, token, now)
    if refused:
        return session, None, refused
    jti = token[simplejwt.api_settings.JTI_CLAIM]
    if jti == session.current_jti:
        pair = _rotate(session, now, client)
        return session, pair, "rotated" if pair else "lost_race"
    if _forgiven(session, jti, now, client):
        # The client lost the answer to its last refresh, or raced itself: the same pair
        # again, minted from what the session row holds, by the key that signed it. No
        # token or session row is written; the event is the only write.
        pair, _ = mint_pair(
            session=session,
            issued_at=session.last_refreshed_at,
            parent_jti=session.previous_jti,
            kid=session.refreshed_kid or None,
        )
        record(EventKind.REFRESH_REPLAYED, user=session.user, sid=session.id, client=client)
        return session, pair, "replayed"
    # A rotated-out token came back, so one copy is stolen: end the family now; the
    # legitimate client signs in again.
    record(EventKind.REUSE_DETECTED, user=session.user, sid=session.id, client=client)
    Session.objects.filter(pk=session.pk).revoke(RevokeReason.REUSE_DETECTED, client=client)
    return session, None, "reuse"


def _refusal(session: Session | None, token, now) -> str:
    """Why this refresh is refused before its jti is looked at; "" if it is not."""
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
    return ""


def _forgiven(session: Session, jti: str, now, client: Client) -> bool:
    """The token the last rotation replaced, presented again briefly, by the client it served.

    previous_jti is always the parent of the current token, so a parent whose successor
    was rotated again is older, and never forgiven. A session never rotated has none.
    """
    grace = timedelta(seconds=app_settings.REFRESH_REUSE_GRACE_SECONDS)
    return (
        bool(grace)
        and session.previous_jti != ""
        and jti == session.previous_jti
        and now - session.last_refreshed_at < grace
        and grace_client(client) == (session.refreshed_network, session.refreshed_device)
    )


def _rotate(session: Session, now, client: Client) -> TokenPair | None:
    """Swap the session's current token for its successor, if nobody swapped it first."""
    pair, refresh = mint_pair(session=session, issued_at=now, parent_jti=session.current_jti)
    token = session.record_refresh_token(
        refresh, fingerprint=fingerprint(pair.refresh), issued_at=now
    )
    refreshed_network, refreshed_device = grace_client(client)
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


def grace_client(client: Client | None) -> tuple[str, str]:
    """(network, device) a rotation records of its client: IPv4 /24 or IPv6 /64, device label.

    Coarser than the address, so a phone moving between addresses of one network, or a
    NAT handing out another, still counts as the same client.
    """
    client = client or Client()
    where = network(client.ip, ipv4_prefix=GRACE_IPV4_PREFIX, ipv6_prefix=GRACE_IPV6_PREFIX)
    return where or "", device_label(client.user_agent)
