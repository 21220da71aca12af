"""Compact list columns shared by the session, token and user admins."""

from django.contrib import admin
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.models import Session

USER_AGENT_CHARS = 40


def when(value) -> str | None:
    """A time to the second, in the current time zone, as the security log has it."""
    if value is None:
        return None
    date, time = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S").split()
    # Date and time may go on two lines in a narrow column, but never break at a hyphen.
    return format_html('<span class="nowrap">{}</span> <span class="nowrap">{}</span>', date, time)


def link_to_session(session_id) -> str | None:
    """The session id, shortened, linking to the session's page (full id on hover)."""
    if session_id is None:
        return None
    url = reverse("admin:accounts_session_change", args=[session_id])
    return format_html('<a href="{}" title="{}">{}…</a>', url, session_id, str(session_id)[:8])


# What the sessions list and a user's sessions inline both show of a session: few and
# narrow, so the list fits a 1,366 px screen beside the admin's sidebar and filters.
SESSION_COLUMNS = ("created", "kind_name", "state", "last_refreshed", "address", "device")


class SessionColumns:
    """Columns of a session row, for the sessions list and a user's sessions."""

    @admin.display(description="created", ordering="created_at")
    def created(self, session: Session) -> str | None:
        return when(session.created_at)

    @admin.display(description="kind")
    def kind_name(self, session: Session) -> str:
        """api (tokens) or admin (a Django sign-in); short, for a narrow column."""
        return session.kind

    @admin.display(description="status")
    def state(self, session: Session) -> str:
        """active, expired, or revoked with why."""
        if session.is_revoked():
            return f"revoked ({session.revoked_reason.replace('_', ' ')})"
        return session.status

    @admin.display(description="last used")
    def last_refreshed(self, session: Session) -> str | None:
        """The last rotation: the last use, to within one access-token lifetime."""
        return when(session.last_refreshed_at)

    @admin.display(description="IP address", ordering="ip_address")
    def address(self, session: Session) -> str | None:
        """The address; a long IPv6 one may wrap after a colon, so the row fits the screen."""
        if session.ip_address is None:
            return None
        return format_html_join(
            mark_safe(":<wbr>"), "{}", ((p,) for p in session.ip_address.split(":"))
        )

    @admin.display(description="device")
    def device(self, session: Session) -> str:
        """The user agent as a person reads it; the session's page has all of it."""
        return session.device or truncatechars(session.user_agent, USER_AGENT_CHARS)
