"""Opening and closing sessions: sign-in, a session's first pair, logout.

Refreshing is accounts.refresh; every way a session ends goes through one verb,
`Session.objects.filter(...).revoke(reason, by=..., client=...)`.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt

from accounts.clients import Client, client_of
from accounts.conf import app_settings
from accounts.devices import device_label
from accounts.events import record
from accounts.exceptions import InvalidCredentials, InvalidRefreshToken, RefreshTokenMismatch
from accounts.guard import ADMIN_LOGIN, API_LOGIN, password_check
from accounts.models import EventKind, RevokeReason, Session, SessionKind, SessionToken
from accounts.models.sessions import outstanding_token
from accounts.refresh import decode_refresh
from accounts.tokens import SESSION_CLAIM, TokenPair, fingerprint, mint_pair


def sign_in(*, request, username: str, password: str) -> tuple[Session, TokenPair]:
    """Check credentials under the brute-force policy and open a session (the API's login).

    As Django's own login does: `authenticate()` gets the request (so backends such as
    django-axes see it, and it sends `user_login_failed`), and `user_logged_in` is sent
    once the session is open (with `session`, which Django's sign-in has none of).
    """
    client = client_of(request)
    user = password_check(
        door=API_LOGIN,
        username=username,
        client=client,
        # ModelBackend runs the hasher for unknown usernames too, so timing doesn't tell.
        verify=lambda: authenticate(request, username=username, password=password),
    )
    if user is None:
        raise InvalidCredentials()
    with transaction.atomic():
        # The password was checked against the row as it was before the hash ran. A
        # password change or a deactivation that committed since has ended every session,
        # and this one must not outlive it: the row must still hold what was checked (on
        # PostgreSQL the row lock also waits for such a change in flight).
        still = (
            type(user)
            ._default_manager.select_for_update()
            .filter(pk=user.pk, password=user.password, is_active=True)
        )
        if not still.exists():
            raise InvalidCredentials()
        session, pair = open_session(user=user, client=client)
        record(EventKind.LOGIN, user=user, sid=session.id, client=client)
        _end_over_limit(user=user, client=client)
        # Django's receivers run here: its own update_last_login among them.
        user_logged_in.send(sender=type(user), request=request, user=user, session=session)
    return session, pair


def open_session(*, user, client: Client) -> tuple[Session, TokenPair]:
    """Open an API session for `user` and issue its first token pair."""
    now = timezone.now()
    session = Session(
        user=user,
        created_at=now,
        expires_at=now + app_settings.SESSION_ABSOLUTE_LIFETIME,
        ip_address=client.ip,
        user_agent=client.user_agent,
        device=device_label(client.user_agent),
    )
    with transaction.atomic():
        pair, refresh = mint_pair(session=session, issued_at=now)
        token = outstanding_token(user.pk, refresh, fingerprint=fingerprint(pair.refresh), at=now)
        session.current_token, session.current_jti = token, token.jti
        session.idle_expires_at = pair.refresh_expires_at
        session.save(force_insert=True)
        SessionToken.objects.create(token=token, session=session)
    return session, pair


def open_admin_session(*, user, client: Client, replaces=None) -> Session:
    """Open the session of a Django sign-in (the admin's): a row and its `login` event.

    It has no tokens: the browser holds Django's session cookie, and
    accounts.signins checks this row on each of its requests. It lives as long as
    that cookie (SESSION_COOKIE_AGE) from sign-in, never past SESSION_ABSOLUTE_LIFETIME,
    and nothing renews it. It counts toward SESSION_LIMIT_PER_USER like any session.
    `replaces` is the id of this browser's previous sign-in, which ends (`logout`).
    """
    now = timezone.now()
    lifetime = min(
        timedelta(seconds=settings.SESSION_COOKIE_AGE), app_settings.SESSION_ABSOLUTE_LIFETIME
    )
    with transaction.atomic():
        if replaces is not None:
            Session.objects.filter(pk=replaces, user=user, kind=SessionKind.ADMIN).revoke(
                RevokeReason.LOGOUT, client=client
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
        record(EventKind.LOGIN, user=user, sid=session.id, client=client, door=ADMIN_LOGIN)
        _end_over_limit(user=user, client=client)
    return session


def logout(*, session: Session, refresh_token: str, client: Client | None = None) -> None:
    """End the caller's session; the refresh token must belong to that same session."""
    token = decode_refresh(refresh_token)
    if token[SESSION_CLAIM] != session.sid:
        # One session's access token never ends another session, the user's or anyone's.
        raise RefreshTokenMismatch()
    Session.objects.filter(pk=session.pk).revoke(RevokeReason.LOGOUT, client=client)


def logout_by_refresh_token(*, refresh_token: str, client: Client | None = None) -> bool:
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
    return bool(sessions.revoke(RevokeReason.LOGOUT, client=client))


def _end_over_limit(*, user, client: Client) -> int:
    """Past SESSION_LIMIT_PER_USER active sessions, end the oldest: a login is never refused."""
    if not app_settings.SESSION_LIMIT_PER_USER:
        return 0
    return Session.objects.over_limit(user).revoke(RevokeReason.SESSION_LIMIT, client=client)
