"""The security record in the admin: read-only, newest first, filterable, at any size."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin.display import link_to_session, when
from accounts.admin.paginators import EstimatedCountMixin
from accounts.admin.readonly import ReadOnlyMixin
from accounts.admin.search import ExactSearchMixin, exact_matches
from accounts.models import SecurityEvent

EVENTS = "admin:accounts_securityevent_changelist"


def events_link(text: str, **lookups) -> str:
    """A link to the security record filtered by `lookups`, e.g. user__id__exact=7."""
    query = "&".join(f"{name}={value}" for name, value in lookups.items())
    return format_html('<a href="{}?{}">{}</a>', reverse(EVENTS), query, text)


@admin.register(SecurityEvent)
class SecurityEventAdmin(EstimatedCountMixin, ReadOnlyMixin, ExactSearchMixin, admin.ModelAdmin):
    """Every event the record holds; append-only, written by the actions it records."""

    list_display = ("time", "event", "account", "session", "ip_address", "device", "door", "by")
    list_display_links = ("time",)
    list_filter = ("kind", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("actor",)
    # Newest first through the primary key; no other column sorts a million rows cheaply.
    ordering = ("-id",)
    sortable_by = ()
    search_fields = ("=username", "=ip_address", "=session_id")
    search_help_text = "Exact username, IP address, or session id."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = None
    fields = (
        "time",
        "event",
        "account",
        "session",
        "ip_address",
        "user_agent",
        "device",
        "door",
        "by",
        "details",
    )
    readonly_fields = fields

    def search_term_matches(self, term: str) -> list:
        return exact_matches(
            SecurityEvent.objects, term, username="username", ip="ip_address", sid="session_id"
        )

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # The links from a user's and a session's page; both columns are indexed.
        return lookup in ("user__id__exact", "session_id") or super().lookup_allowed(
            lookup, value, request
        )

    @admin.display(description="time")
    def time(self, event: SecurityEvent) -> str:
        return when(event.created_at)

    @admin.display(description="event")
    def event(self, event: SecurityEvent) -> str:
        reason = f" ({event.reason.replace('_', ' ')})" if event.reason else ""
        return f"{event.get_kind_display()}{reason}"

    @admin.display(description="user")
    def account(self, event: SecurityEvent) -> str:
        """The name as it was; a link to the user while the user exists."""
        if event.user_id is None:
            return event.username or "-"
        url = reverse("admin:auth_user_change", args=[event.user_id])
        return format_html('<a href="{}">{}</a>', url, event.username)

    @admin.display(description="session")
    def session(self, event: SecurityEvent) -> str | None:
        return link_to_session(event.session_id)

    @admin.display(description="door")
    def door(self, event: SecurityEvent) -> str:
        """Where a password was checked (failures and lockouts)."""
        return event.details.get("door", "").replace("_", " ")

    @admin.display(description="by")
    def by(self, event: SecurityEvent) -> str:
        """The staff user who acted on someone else's account."""
        return event.actor.get_username() if event.actor else ""
