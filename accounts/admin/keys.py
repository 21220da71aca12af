"""Signing keys and resource servers in the admin: what other services trust, and who they are."""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin.display import when
from accounts.admin.readonly import ReadOnlyMixin
from accounts.admin.selection import ValidSelectionMixin
from accounts.models import PushState, ResourceServer, SigningKey


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The key ring, read-only: keys rotate with `manage.py signing_keys`, never here.

    The encrypted private key is never shown, not even as ciphertext.
    """

    list_display = (
        "kid",
        "algorithm",
        "state",
        "added",
        "activated",
        "deactivated",
        "published_until",
    )
    list_filter = ("state", "algorithm")
    fields = (
        "kid",
        "algorithm",
        "state",
        "public_key",
        "added",
        "activated",
        "deactivated",
        "retired",
        "published_until",
    )
    readonly_fields = fields

    @admin.display(description="added (published)", ordering="created_at")
    def added(self, key: SigningKey) -> str | None:
        return when(key.created_at)

    @admin.display(description="activated")
    def activated(self, key: SigningKey) -> str | None:
        return when(key.activated_at)

    @admin.display(description="deactivated")
    def deactivated(self, key: SigningKey) -> str | None:
        return when(key.deactivated_at)

    @admin.display(description="retired")
    def retired(self, key: SigningKey) -> str | None:
        return when(key.retired_at)

    @admin.display(description="in the JWKS until")
    def published_until(self, key: SigningKey) -> str:
        """Retired keys leave the JWKS once the last token they signed has expired."""
        return when(key.needed_until) if key.needed_until else "while not retired"


@admin.register(ResourceServer)
class ResourceServerAdmin(ValidSelectionMixin, admin.ModelAdmin):
    """Registered services: `manage.py add_resource_server` adds them; here they are disabled.

    The secret is shown once, by the command; only its hash is stored, and never shown.
    """

    list_display = ("name", "client_id", "enabled", "push_url", "delivery", "registered")
    list_filter = ("enabled",)
    search_fields = ("=name", "=client_id")
    fields = ("name", "client_id", "enabled", "push_url", "delivery", "registered")
    readonly_fields = ("client_id", "delivery", "registered")
    actions = ("disable_selected",)

    def has_add_permission(self, request) -> bool:
        # A secret must reach the service; the command prints it, a form would not.
        return False

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "push_url":
            kwargs["assume_scheme"] = "https"  # a push URL without a scheme is an https one
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request):
        waiting = Count("outbox", filter=Q(outbox__state=PushState.PENDING))
        failed = Count("outbox", filter=Q(outbox__state=PushState.FAILED))
        return super().get_queryset(request).annotate(waiting=waiting, failed=failed)

    @admin.display(description="session events")
    def delivery(self, server: ResourceServer) -> str:
        """Waiting and failed events, and the last delivery: a link to them."""
        last = when(server.last_delivered_at) or "never"
        url = reverse("admin:accounts_outboxevent_changelist")
        return format_html(
            '<a href="{}?receiver__id__exact={}">{} waiting, {} failed</a>; last delivered {}',
            url,
            server.pk,
            server.waiting,
            server.failed,
            last,
        )

    @admin.display(description="registered", ordering="created_at")
    def registered(self, server: ResourceServer) -> str | None:
        return when(server.created_at)

    @admin.action(description="Disable selected resource servers", permissions=["change"])
    def disable_selected(self, request, queryset):
        count = queryset.filter(enabled=True).update(enabled=False)
        self.message_user(request, f"Disabled {count} resource server(s).", messages.SUCCESS)
