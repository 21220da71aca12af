"""SimpleJWT's outstanding and blacklisted tokens, shown by jti, never as tokens."""

import re

# Registered first, so that ours replace them whatever the app order.
import rest_framework_simplejwt.token_blacklist.admin  # noqa: F401
from django.contrib import admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.admin.display import link_to_session, when
from accounts.admin.paginators import EstimatedCountMixin
from accounts.admin.readonly import ReadOnlyMixin
from accounts.admin.revoking import RevokePermissionMixin, report_revoked, revoke_and_log
from accounts.admin.search import ExactSearchMixin, as_uuid
from accounts.admin.selection import ValidSelectionMixin
from accounts.models import Session, SessionToken
from accounts.tokens import fingerprint

SHA256_HEX = re.compile(r"[0-9a-f]{64}")

admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)


def token_fingerprint(value: str) -> str:
    """What the `token` column may show: a SHA-256, never a JWT.

    The session service stores fingerprints only; a row written by stock SimpleJWT
    code would hold the token itself, so that is hashed before display.
    """
    return value if SHA256_HEX.fullmatch(value) else fingerprint(value)


def session_of(token: OutstandingToken):
    """The id of the session that issued `token`, from the select_related row."""
    link = getattr(token, "session_link", None)
    return link.session_id if link else None


def tokens_matching(term: str) -> list:
    """Ids of the tokens a search term names: by jti, username, or session id."""
    matches = [OutstandingToken.objects.filter(user__username=term).values("pk")]
    if uuid := as_uuid(term):
        # A jti is a UUID's 32 hex digits; a session id is a UUID. Each hits an index.
        matches.append(OutstandingToken.objects.filter(jti=uuid.hex).values("pk"))
        matches.append(SessionToken.objects.filter(session=uuid).values("token_id"))
    return matches


class ReadOnlyTokenAdmin(
    ValidSelectionMixin,
    EstimatedCountMixin,
    ReadOnlyMixin,
    RevokePermissionMixin,
    ExactSearchMixin,
    admin.ModelAdmin,
):
    """Read-only token lists; the only write is revoking the tokens' sessions.

    Tokens are written by the session service only. Blacklisting one by hand would not
    end its session (revoking does), so there is no add form at all.
    """

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    search_help_text = "Exact jti, username, or session id."
    actions = ("revoke_sessions",)

    def get_queryset(self, request):
        # A token's page shows the same related rows as the list: one query for all.
        return super().get_queryset(request).select_related(*self.list_select_related)

    def sessions_of(self, queryset):
        """The sessions that issued the selected tokens."""
        raise NotImplementedError

    @admin.action(description="Revoke the sessions of selected tokens", permissions=["revoke"])
    def revoke_sessions(self, request, queryset):
        report_revoked(self, request, revoke_and_log(request, self.sessions_of(queryset)))


@admin.register(OutstandingToken)
class OutstandingTokenAdmin(ReadOnlyTokenAdmin):
    """Every refresh token issued, newest first, with its session and blacklist state."""

    list_display = ("jti", "user", "session", "created", "expires", "blacklisted")
    list_select_related = ("user", "session_link", "blacklistedtoken")
    # No list_filter: "blacklisted or not" would count an anti-join of a million rows.

    # Newest first (SimpleJWT lists by user), through the primary key's index: created_at
    # has none. Only indexed columns sort.
    ordering = ("-id",)
    sortable_by = ("jti", "expires")
    search_fields = ("=jti", "=user__username", "=session_link__session")
    fields = ("jti", "user", "session", "created", "expires", "blacklisted_at", "sha256")
    readonly_fields = fields

    def search_term_matches(self, term: str) -> list:
        return tokens_matching(term)

    def sessions_of(self, queryset):
        return Session.objects.filter(token_links__token__in=queryset.values("pk"))

    @admin.display(description="session")
    def session(self, token: OutstandingToken) -> str:
        return link_to_session(session_of(token))

    @admin.display(description="created")
    def created(self, token: OutstandingToken) -> str | None:
        return when(token.created_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, token: OutstandingToken) -> str | None:
        return when(token.expires_at)

    @admin.display(description="blacklisted", boolean=True)
    def blacklisted(self, token: OutstandingToken) -> bool:
        return getattr(token, "blacklistedtoken", None) is not None

    @admin.display(description="blacklisted at")
    def blacklisted_at(self, token: OutstandingToken) -> str | None:
        blacklisted = getattr(token, "blacklistedtoken", None)
        return when(blacklisted.blacklisted_at) if blacklisted else None

    @admin.display(description="SHA-256 fingerprint")
    def sha256(self, token: OutstandingToken) -> str:
        return token_fingerprint(token.token)


@admin.register(BlacklistedToken)
class BlacklistedTokenAdmin(ReadOnlyTokenAdmin):
    """Refresh tokens refused for good: rotated out, or of a revoked session."""

    list_display = ("jti", "user", "session", "blacklisted", "expires")
    list_select_related = ("token__user", "token__session_link")
    ordering = ("-id",)
    # No column sorts: none is indexed on this table.
    sortable_by = ()
    search_fields = ("=token__jti", "=token__user__username", "=token__session_link__session")
    # No <select> of a million tokens, should a form ever be enabled.
    raw_id_fields = ("token",)
    fields = ("jti", "user", "session", "blacklisted", "expires")
    readonly_fields = fields
    search_key = "token"

    def search_term_matches(self, term: str) -> list:
        return tokens_matching(term)

    def sessions_of(self, queryset):
        return Session.objects.filter(token_links__token__in=queryset.values("token_id"))

    @admin.display(description="jti")
    def jti(self, blacklisted: BlacklistedToken) -> str:
        return blacklisted.token.jti

    @admin.display(description="user")
    def user(self, blacklisted: BlacklistedToken):
        return blacklisted.token.user

    @admin.display(description="session")
    def session(self, blacklisted: BlacklistedToken) -> str:
        return link_to_session(session_of(blacklisted.token))

    @admin.display(description="blacklisted")
    def blacklisted(self, blacklisted: BlacklistedToken) -> str | None:
        return when(blacklisted.blacklisted_at)

    @admin.display(description="expires")
    def expires(self, blacklisted: BlacklistedToken) -> str | None:
        return when(blacklisted.token.expires_at)
