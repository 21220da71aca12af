"""The session service: every write that signs in, rotates, or ends a session."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.clients import Client
from accounts.devices import device_label
from accounts.events import Event, security_event, security_events
from accounts.exceptions import (
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenMismatch,
)
from accounts.guard import ADMIN_LOGIN, API_LOGIN, password_check
from accounts.models import RevokeReason, Session, SessionKind, SessionToken
from accounts.rotation import (
    REPLAY,
    REUSE,
    ROTATE,
    decode_refresh,
    issue,
    mint,
    refresh_verdict,
    rotate,
)
from accounts.tokens import SESSION_CLAIM, TokenPair


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
        # The password was checked against the row as it was before the hash ran. A
        # password change or a deactivation that committed since has ended every session,
        # and this one must not outlive it: the row must still hold what was checked (on
        # PostgreSQL this UPDATE also waits for such a change in flight).
        signed_in = type(user)._default_manager.filter(
            pk=user.pk, password=user.password, is_active=True
        )
        if not signed_in.update(last_login=timezone.now()):
            raise InvalidCredentials()
        session, pair = session_create(user=user, client=client)
        security_event("login", user=user, sid=session.id, client=client)
        if settings.SESSION_LIMIT_PER_USER:
            _revoke_over_limit(user=user, client=client)
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
        device=device_label(client.user_agent),
    )
    with transaction.atomic():
        pair, token = issue(session, now)
        session.current_token, session.current_jti = token, token.jti
        session.idle_expires_at = pair.refresh_expires_at
        session.save(force_insert=True)
        SessionToken.objects.create(token=token, session=session)
    return session, pair


def admin_session_open(*, user, client: Client, replaces=None) -> Session:
    """Open the session of a Django sign-in (the admin's): a row and its `login` event.

    It has no tokens: the browser holds Django's session cookie, and
    accounts.signins checks this row on each of its requests. It lives as long as
    that cookie (SESSION_COOKIE_AGE) from sign-in, never past SESSION_ABSOLUTE_LIFETIME,
    and nothing renews it. It counts toward SESSION_LIMIT_PER_USER like any session.
    `replaces` is the id of this browser's previous sign-in, which ends (`logout`).
    """
    now = timezone.now()
    lifetime = min(
        timedelta(seconds=settings.SESSION_COOKIE_AGE), settings.SESSION_ABSOLUTE_LIFETIME
    )
    with transaction.atomic():
        if replaces is not None:
            _revoke(
                Session.objects.filter(pk=replaces, user=user, kind=SessionKind.ADMIN),
                RevokeReason.LOGOUT,
                client=client,
            )
        session = Session.objects.create(
            user=user,
            kind=SessionKind.ADMIN,
            created_at=now,
            expires_at=now + lifetime,
            idle_expires_at=now + lifetime,
            ip_address=client.ip,
            user_agent=client.user_agent,
            device=device_label(client.user_agent),
        )
        security_event("login", user=user, sid=session.id, client=client, door=ADMIN_LOGIN)
        if settings.SESSION_LIMIT_PER_USER:
            _revoke_over_limit(user=user, client=client)
    return session


def session_refresh(*, refresh_token: str, client: Client | None = None) -> TokenPair:
    """Rotate a refresh token, forgive an honest retry, and end the session on a replay.

    Decided on the session row, locked for the transaction: of N concurrent refreshes
    of one token, the first rotates and the others wait, then find their token is the
    one just replaced and get the very same new pair (within the grace window).
    """
    token = decode_refresh(refresh_token)
    try:
        pair, session, verdict = _refresh_locked(token, client)
    except IntegrityError:
        # Two rotations of one parent mint the same successor jti, so the second insert
        # fails on its unique index: only possible without the row lock, and a refusal.
        pair, session, verdict = None, None, "lost_race"
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


def _refresh_locked(token, client: Client | None):
    """The decision and its writes, in one transaction on the locked session row."""
    pair = None
    with transaction.atomic():
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
        verdict = refresh_verdict(session, token, now, client)
        if verdict == ROTATE:
            pair = rotate(session, now, client)
            verdict = "rotated" if pair else "lost_race"
        elif verdict == REPLAY:
            # The client lost the answer to its last refresh, or raced itself: the same
            # pair again, minted from what the session row holds. No token or session row
            # is written; the event is the only write.
            pair, _ = mint(
                session,
                session.last_refreshed_at,
                parent_jti=session.previous_jti,
                kid=session.refreshed_kid or None,
            )
            security_event("refresh_replayed", user=session.user, sid=session.id, client=client)
        elif verdict == REUSE:
            # RFC 9700 §4.14.2: a rotated-out token came back, so one copy is stolen.
            # End the family now; the legitimate client signs in again.
            security_event("reuse_detected", user=session.user, sid=session.id, client=client)
            _revoke(
                Session.objects.filter(pk=session.pk), RevokeReason.REUSE_DETECTED, client=client
            )
    return pair, session, verdict


def session_logout(*, session: Session, refresh_token: str, client: Client | None = None) -> None:
    """End the caller's session; the refresh token must belong to that same session."""
    token = decode_refresh(refresh_token)
    if token[SESSION_CLAIM] != session.sid:
        # One session's access token never ends another session, the user's or anyone's.
        raise RefreshTokenMismatch()
    session_revoke(session=session, reason=RevokeReason.LOGOUT, client=client)


def session_end(*, refresh_token: str, client: Client | None = None) -> bool:
    """End the session a refresh token belongs to; idempotent. True if this call ended it.

    For the cookie logout, which has no access token: the refresh token proves the
    session, as it could have refreshed it. A token that does not verify (or none)
    ends nothing and is no error, so a page can always sign out and clear its cookie.
    """
    try:
        token = decode_refresh(refresh_token)
    except InvalidRefreshToken:
        return False
    sessions = Session.objects.filter(
        pk=token[SESSION_CLAIM], user_id=token[simplejwt.api_settings.USER_ID_CLAIM]
    )
    return bool(sessions_revoke(sessions=sessions, reason=RevokeReason.LOGOUT, client=client))


def session_revoke(*, session: Session, reason: str, client: Client | None = None) -> bool:
    """Revoke one session; idempotent. True if this call revoked it."""
    return bool(
        sessions_revoke(
            sessions=Session.objects.filter(pk=session.pk), reason=reason, client=client
        )
    )


def sessions_revoke(
    *, sessions: QuerySet, reason: str, client: Client | None = None, actor=None, **details
) -> int:
    """Revoke every not-yet-revoked session in `sessions`; returns how many.

    `actor` is the staff user who asked, when it is not the sessions' owner; `details`
    go into each session's event (e.g. the resource server that asked).
    """
    with transaction.atomic():
        return _revoke(sessions, reason, client=client, actor=actor, **details)


def session_revoke_all(
    *, user, reason: str, keep: Session | None = None, client: Client | None = None, actor=None
) -> int:
    """Revoke all of a user's sessions, optionally keeping one (the caller's)."""
    sessions = Session.objects.filter(user=user)
    if keep is not None:
        sessions = sessions.exclude(pk=keep.pk)
    return sessions_revoke(sessions=sessions, reason=reason, client=client, actor=actor)


def _revoke_over_limit(*, user, client: Client) -> int:
    """Past SESSION_LIMIT_PER_USER active sessions, end the oldest: a login is never refused."""
    over = Session.objects.active().filter(user=user).order_by("-created_at", "-pk")
    over = over.values("pk")[settings.SESSION_LIMIT_PER_USER :]
    return _revoke(Session.objects.filter(pk__in=over), RevokeReason.SESSION_LIMIT, client=client)


def _revoke(
    sessions: QuerySet, reason: str, *, client: Client | None, actor=None, **details
) -> int:
    """Revoke sessions, blacklist their current refresh tokens, record each; in a transaction."""
    rows = list(
        Session.objects.select_for_update(of=("self",))
        .filter(pk__in=sessions.values("pk"), revoked_at__isnull=True)
        .values_list("pk", "user_id", "user__username", "current_token_id")
    )
    if not rows:
        return 0
    now = timezone.now()
    Session.objects.filter(pk__in=[pk for pk, *_ in rows]).update(
        revoked_at=now, revoked_reason=reason
    )
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=token_id) for *_, token_id in rows if token_id],
        ignore_conflicts=True,
    )
    security_events(
        [
            Event(
                "session_revoked",
                user=user_id,
                username=username,
                sid=pk,
                client=client,
                reason=reason,
                actor=actor,
                details=details,
            )
            for pk, user_id, username, _ in rows
        ]
    )
    return len(rows)
