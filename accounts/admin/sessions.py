"""The sessions console: find a user's sessions, read their token chain, revoke them."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.admin.display import SESSION_COLUMNS, SessionColumns, when
from accounts.admin.events import events_link
from accounts.admin.paginators import EstimatedCountMixin
from accounts.admin.revoking import RevokePermissionMixin, report_revoked, revoke_and_log
from accounts.admin.search import ExactSearchMixin, exact_matches
from accounts.admin.selection import ValidSelectionMixin
from accounts.models import Session, SessionKind, SessionToken

# Rows of a session's refresh-token chain shown on its page; the tokens list has the rest.
CHAIN_ROWS = 50


class StatusFilter(admin.SimpleListFilter):
    """Filter by lifecycle state, as the session queryset defines it."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired"))

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.active()
        if self.value() == "revoked":
            return queryset.revoked()
        if self.value() == "expired":
            return queryset.expired()
        return queryset


@admin.register(Session)
class SessionAdmin(
    ValidSelectionMixin,
    EstimatedCountMixin,
    SessionColumns,
    RevokePermissionMixin,
    ExactSearchMixin,
    admin.ModelAdmin,
):
    """Read-only sessions, newest first, with revoke as the only write."""

    list_display = ("created", "user", *SESSION_COLUMNS[1:])
    list_display_links = ("created",)
    list_filter = (StatusFilter, "kind", "revoked_reason")
    list_select_related = ("user",)
    # Only indexed columns sort: anything else sorts 200,000 rows per page view.
    sortable_by = ("created", "address")
    ordering = ("-created_at",)
    search_fields = ("=user__username", "=ip_address", "=id")
    search_help_text = "Exact username, IP address, or session id."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("revoke_selected",)
    fieldsets = (
        (None, {"fields": ("id", "user", "kind", "status", "created", "last_refreshed")}),
        ("Client at sign-in", {"fields": ("ip_address", "device", "user_agent")}),
        ("End", {"fields": ("expires", "revoked", "revoked_reason", "security_record")}),
        ("Refresh tokens (newest first)", {"fields": ("token_chain",)}),
    )
    readonly_fields = (
        "id",
        "user",
        "kind",
        "status",
        "created",
        "last_refreshed",
        "ip_address",
        "device",
        "user_agent",
        "expires",
        "revoked",
        "revoked_reason",
        "security_record",
        "token_chain",
    )

    def get_queryset(self, request):
        # The session page shows the user too: one query for both.
        return super().get_queryset(request).select_related("user")

    def search_term_matches(self, term: str) -> list:
        return exact_matches(
            Session.objects, term, username="user__username", ip="ip_address", sid="pk"
        )

    # Sessions come from sign-ins, and change only by revoking (the action and the
    # button). Without change permission every session page is read-only.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        # Deleting a session would end it without a trail: revoke instead. The
        # delete permission itself stays, so deleting a user cascades to sessions.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied

    @admin.action(description="Revoke selected sessions", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        report_revoked(self, request, revoke_and_log(request, queryset))

    def get_urls(self):
        revoke = path(
            "<path:object_id>/revoke/",
            self.admin_site.admin_view(self.revoke_view),
            name="accounts_session_revoke",
        )
        return [revoke, *super().get_urls()]

    def revoke_view(self, request, object_id):
        """The detail page's revoke button: POST only, CSRF-checked by admin_view."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = self.get_object(request, unquote(object_id))
        if session is None:
            # As the admin answers for a missing object: back to the list, saying so.
            self.message_user(
                request, f'Session with ID "{object_id}" does not exist.', messages.WARNING
            )
            return HttpResponseRedirect(reverse("admin:accounts_session_changelist"))
        if not self.has_revoke_permission(request, session):
            raise PermissionDenied
        revoked = revoke_and_log(request, Session.objects.filter(pk=session.pk))
        report_revoked(self, request, revoked)
        return HttpResponseRedirect(reverse("admin:accounts_session_change", args=[session.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["has_revoke_permission"] = self.has_revoke_permission(request, obj)
        context["show_delete"] = False
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="expires")
    def expires(self, session: Session) -> str:
        """The absolute expiry: rotation never extends a session past it."""
        return when(session.expires_at)

    @admin.display(description="revoked")
    def revoked(self, session: Session) -> str | None:
        return when(session.revoked_at)

    @admin.display(description="security record")
    def security_record(self, session: Session) -> str:
        return events_link("Events of this session", session_id=session.pk)

    @admin.display(description="refresh-token chain")
    def token_chain(self, session: Session) -> str:
        """The session's refresh tokens by jti; a token itself is never stored or shown."""
        if session.kind == SessionKind.ADMIN:
            return "None: an admin sign-in holds Django's session cookie, not tokens."
        links = list(
            SessionToken.objects.filter(session=session)
            .select_related("token__blacklistedtoken")
            .order_by("-token_id")[: CHAIN_ROWS + 1]
        )
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    link.token.jti,
                    when(link.token.created_at) or "-",
                    when(link.token.expires_at),
                    when(_blacklisted_at(link.token)) or "-",
                    "current" if link.token_id == session.current_token_id else "",
                )
                for link in links[:CHAIN_ROWS]
            ),
        )
        more = ""
        if len(links) > CHAIN_ROWS:
            url = reverse("admin:token_blacklist_outstandingtoken_changelist")
            more = format_html(
                '<p>Older tokens: <a href="{}?q={}">all tokens of this session</a>.</p>',
                url,
                session.pk,
            )
        return format_html(
            "<table><thead><tr><th>jti</th><th>issued</th><th>expires</th>"
            "<th>blacklisted</th><th></th></tr></thead><tbody>{}</tbody></table>{}",
            rows,
            more,
        )


def _blacklisted_at(token):
    """When the token was blacklisted, or None; uses the select_related row."""
    blacklisted = getattr(token, "blacklistedtoken", None)
    return blacklisted.blacklisted_at if blacklisted else None
