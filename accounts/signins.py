"""Django sign-ins (the admin's) as sessions: opened at login, checked per request, ended.

A browser signed in through `django.contrib.auth.login` (the admin's login form, or any
login view of a host project) holds Django's session cookie, not our tokens. Each such
sign-in is an `accounts.Session` of kind "admin", so every way of ending a user's
sessions (logout-all, the admin's revoke actions, a password change, a deactivation,
the per-user limit) ends it too: SignInSessionMiddleware signs the browser out on its
next request.
"""

from uuid import UUID

from django.contrib.auth import logout, user_logged_in, user_logged_out
from django.dispatch import receiver

from accounts.clients import client_of
from accounts.models import RevokeReason, Session, SessionKind
from accounts.services import open_admin_session

# Where the Django session keeps the id of its accounts.Session.
SESSION_ID_KEY = "_accounts_session_id"


def signed_in_session_id(request) -> UUID | None:
    """The id of the accounts.Session this request's Django session belongs to, if any."""
    value = request.session.get(SESSION_ID_KEY)
    if not value:
        return None
    try:
        return UUID(str(value))
    except ValueError:
        return None


def current_admin_session(request) -> Session | None:
    """The accounts.Session of this request's Django sign-in, if it has one."""
    sid = signed_in_session_id(request)
    if sid is None:
        return None
    return Session.objects.filter(pk=sid, user=request.user, kind=SessionKind.ADMIN).first()


@receiver(user_logged_in, dispatch_uid="accounts.signins.opened")
def open_sign_in_session(sender, request, user, session=None, **kwargs) -> None:
    """A Django sign-in opens a session of kind "admin", and the Django session names it.

    Its `login` event is written here, for every login view alike. Signing in again
    in the same browser ends the sign-in it replaces. The API's own login sends this
    signal too, with the `session` it opened: that one has a session already.
    """
    if session is not None or getattr(request, "session", None) is None:
        # The API's login, or code with no browser behind it: nothing to open here.
        return
    session = open_admin_session(
        user=user, client=client_of(request), replaces=signed_in_session_id(request)
    )
    request.session[SESSION_ID_KEY] = str(session.pk)


@receiver(user_logged_out, dispatch_uid="accounts.signins.closed")
def end_sign_in_session(sender, request, user, **kwargs) -> None:
    """The admin's "log out" ends the sign-in's session (`logout`), if it is still active."""
    sid = signed_in_session_id(request)
    if user is None or sid is None:
        return
    sessions = Session.objects.active().filter(pk=sid, user=user, kind=SessionKind.ADMIN)
    sessions.revoke(RevokeReason.LOGOUT, client=client_of(request))


class SignInSessionMiddleware:
    """Signs out a Django sign-in whose session has ended; after AuthenticationMiddleware.

    One query by primary key for a request signed in through Django's session; none for
    the API's bearer requests, which carry no session cookie. A Django session that
    names no session (one signed in before sign-ins were sessions) is signed out too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated and not self.is_live(request):
            # Django's own logout: the session is flushed, its cookie cleared, and the
            # admin answers this very request with its login page.
            logout(request)
        return self.get_response(request)

    def is_live(self, request) -> bool:
        """Whether the request's sign-in session is still active."""
        sid = signed_in_session_id(request)
        if sid is None:
            return False
        sessions = Session.objects.active().filter(
            pk=sid, user_id=request.user.pk, kind=SessionKind.ADMIN
        )
        return sessions.exists()
