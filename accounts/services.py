"""The session service: every write that signs in, rotates, or ends a session."""

import logging
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.clients import Client
from accounts.exceptions import (
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenMismatch,
)
from accounts.guard import API_LOGIN, password_check
from accounts.models import RevokeReason, Session, SessionToken
from accounts.queries import session_with_user
from accounts.security_log import security_event
from accounts.tokens import SESSION_CLAIM, SessionRefreshToken, TokenPair, fingerprint


def session_login(*, username: str, password: str, client: Client) -> tuple[Session, TokenPair]:
    """Check credentials under the brute-force policy and open a session."""
    user = password_check(
        door=API_LOGIN,
        username=username,
        client=client,
        # ModelBackend runs the hasher for unknown usernames too, so timing doesn't tell.
        verify=lambda: authenticate(username=username, password=password),
    )
    if user is None:
        raise InvalidCredentials()
    with transaction.atomic():
        session, pair = session_create(user=user, client=client)
        update_last_login(None, user)
        security_event("login", user=user, sid=session.id, client=client)
    return session, pair


def session_create(*, user, client: Client) -> tuple[Session, TokenPair]:
    """Open a session for `user` and issue its first token pair."""
    now = timezone.now()
    session = Session(
        user=user,
        created_at=now,
        expires_at=now + settings.SESSION_ABSOLUTE_LIFETIME,
        ip_address=client.ip,
        user_agent=client.user_agent,
    )
    with transaction.atomic():
        pair, token = _issue(session, now)
        session.current_token, session.current_jti = token, token.jti
        session.save(force_insert=True)
        SessionToken.objects.create(token=token, session=session)
    return session, pair


def session_refresh(*, refresh_token: str, client: Client | None = None) -> TokenPair:
    """Rotate a refresh token; a replayed, rotated-out one revokes its whole session."""
    token = _decode_refresh(refresh_token)
    now = timezone.now()
    pair = None
    with transaction.atomic():
        try:
            session = session_with_user(token[SESSION_CLAIM], for_update=True)
        except Session.DoesNotExist:
            session = None
        verdict = _refresh_verdict(session, token, now)
        if verdict == "rotate":
            pair = _rotate(session, now)
            verdict = "rotated" if pair else "lost_race"
        elif verdict == "reuse":
            # RFC 9700 §4.14.2: a rotated-out token came back, so one copy is stolen.
            # End the family now; the legitimate client signs in again.
            security_event(
                "reuse_detected",
                user=session.user_id,
                sid=session.id,
                client=client,
                level=logging.WARNING,
            )
            _revoke(
                Session.objects.filter(pk=session.pk), RevokeReason.REUSE_DETECTED, client=client
            )
    if pair is None:
        if session is not None:
            security_event(
                "refresh_refused",
                user=session.user_id,
                sid=session.id,
                client=client,
                reason=verdict,
            )
        raise InvalidRefreshToken()
    security_event("refresh", user=session.user_id, sid=session.id, client=client)
    return pair


def session_logout(*, session: Session, refresh_token: str, client: Client | None = None) -> None:
    """End the caller's session; the refresh token must belong to that same session."""
    token = _decode_refresh(refresh_token)
    if token[SESSION_CLAIM] != session.sid:
        # One session's access token never ends another session, the user's or anyone's.
        raise RefreshTokenMismatch()
    session_revoke(session=session, reason=RevokeReason.LOGOUT, client=client)


def session_revoke(*, session: Session, reason: str, client: Client | None = None) -> bool:
    """Revoke one session; idempotent. True if this call revoked it."""
    return bool(
        sessions_revoke(
            sessions=Session.objects.filter(pk=session.pk), reason=reason, client=client
        )
    )


def sessions_revoke(
    *, sessions: QuerySet, reason: str, client: Client | None = None, actor=None
) -> int:
    """Revoke every not-yet-revoked session in `sessions`; returns how many.

    `actor` is the staff user who asked, when it is not the sessions' owner.
    """
    with transaction.atomic():
        return _revoke(sessions, reason, client=client, actor=actor)


def session_revoke_all(
    *, user, reason: str, keep: Session | None = None, client: Client | None = None
) -> int:
    """Revoke all of a user's sessions, optionally keeping one (the caller's)."""
    sessions = Session.objects.filter(user=user)
    if keep is not None:
        sessions = sessions.exclude(pk=keep.pk)
    return sessions_revoke(sessions=sessions, reason=reason, client=client)


def _decode_refresh(raw: str) -> SessionRefreshToken:
    """Verify signature, expiry, type and claims; anything wrong is the same 401."""
    try:
        token = SessionRefreshToken(raw)
        UUID(str(token[SESSION_CLAIM]))
        _ = token[simplejwt.api_settings.USER_ID_CLAIM]
    except (TokenError, KeyError, ValueError, TypeError):
        raise InvalidRefreshToken() from None
    return token


def _refresh_verdict(session: Session | None, token, now) -> str:
    """Decide a refresh: "rotate", "reuse", or why it is refused."""
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
    jti = token["jti"]
    if jti == session.current_jti:
        return "rotate"
    grace = timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS)
    if grace and jti == session.previous_jti and session.last_refreshed_at >= now - grace:
        # A client that lost the response to its last refresh (or raced itself)
        # is refused without ending the session. The trade-off is in the README.
        return "grace_replay"
    return "reuse"


def _issue(session: Session, now) -> tuple[TokenPair, OutstandingToken]:
    """Mint a token pair for `session` and record the refresh token's fingerprint."""
    refresh = SessionRefreshToken()
    refresh[simplejwt.api_settings.USER_ID_CLAIM] = str(session.user_id)
    refresh[SESSION_CLAIM] = session.sid
    # Idle timeout, renewed by each rotation, but never past the session's absolute expiry.
    expires_at = min(now + simplejwt.api_settings.REFRESH_TOKEN_LIFETIME, session.expires_at)
    refresh.set_exp(from_time=now, lifetime=expires_at - now)
    encoded = str(refresh)
    record = OutstandingToken.objects.create(
        user_id=session.user_id,
        jti=refresh["jti"],
        token=fingerprint(encoded),
        created_at=now,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    pair = TokenPair(
        access=str(refresh.access_token),
        refresh=encoded,
    )
    return pair, record


def _rotate(session: Session, now) -> TokenPair | None:
    """Swap the session's current token for a new one, if nobody swapped it first."""
    pair, token = _issue(session, now)
    SessionToken.objects.create(token=token, session=session)
    # Compare-and-swap: holds even where select_for_update is a no-op (SQLite).
    swapped = Session.objects.filter(
        pk=session.pk, current_jti=session.current_jti, revoked_at__isnull=True
    ).update(
        current_token=token,
        current_jti=token.jti,
        previous_jti=session.current_jti,
        last_refreshed_at=now,
    )
    if swapped != 1:
        transaction.set_rollback(True)
        return None
    BlacklistedToken.objects.create(token_id=session.current_token_id)
    return pair


def _revoke(sessions: QuerySet, reason: str, *, client: Client | None, actor=None) -> int:
    """Mark sessions revoked and blacklist their current refresh tokens (in a transaction)."""
    rows = list(
        Session.objects.select_for_update()
        .filter(pk__in=sessions.values("pk"), revoked_at__isnull=True)
        .values_list("pk", "user_id", "current_token_id")
    )
    if not rows:
        return 0
    now = timezone.now()
    Session.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
        revoked_at=now, revoked_reason=reason
    )
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=token_id) for _, _, token_id in rows if token_id],
        ignore_conflicts=True,
    )
    by = {"actor": actor.pk} if actor is not None else {}
    for pk, user_id, _ in rows:
        security_event("session_revoked", user=user_id, sid=pk, client=client, reason=reason, **by)
    return len(rows)
