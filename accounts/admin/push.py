"""Pushed session events in the admin: what each resource server was sent, and how it went,
and the notices the worker has not fanned out yet (a list that grows only when it is down)."""

from django.contrib import admin, messages

from accounts import delivery
from accounts.admin.display import when
from accounts.admin.readonly import ReadOnlyMixin
from accounts.admin.selection import ValidSelectionMixin
from accounts.models import OutboxEvent, PushNotice


@admin.register(OutboxEvent)
class OutboxEventAdmin(ValidSelectionMixin, admin.ModelAdmin):
    """The outbox: pending, delivered and failed events, newest first; retry is the only write."""

    list_display = (
        "created",
        "receiver",
        "kind",
        "state",
        "attempts",
        "next_attempt",
        "last_error",
    )
    list_filter = ("state", "kind", "receiver")
    list_select_related = ("receiver",)
    ordering = ("-id",)
    search_fields = ("=jti",)
    search_help_text = "Exact jti."
    actions = ("retry_now",)
    fields = (
        "receiver",
        "kind",
        "jti",
        "state",
        "attempts",
        "created",
        "last_attempt",
        "next_attempt",
        "delivered",
        "last_error",
        "claims",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Send selected events again now", permissions=["view"])
    def retry_now(self, request, queryset):
        count = delivery.retry(queryset)
        self.message_user(request, f"{count} event(s) will be sent again now.", messages.SUCCESS)

    @admin.display(description="created", ordering="created_at")
    def created(self, event: OutboxEvent) -> str | None:
        return when(event.created_at)

    @admin.display(description="last attempt")
    def last_attempt(self, event: OutboxEvent) -> str | None:
        return when(event.last_attempt_at)

    @admin.display(description="next attempt")
    def next_attempt(self, event: OutboxEvent) -> str | None:
        return when(event.next_attempt_at) if event.state == "pending" else None

    @admin.display(description="delivered")
    def delivered(self, event: OutboxEvent) -> str | None:
        return when(event.delivered_at)


@admin.register(PushNotice)
class PushNoticeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Session ends not yet fanned out to the receivers: empty within a beat while the
    event worker runs, so rows that stay here say it does not."""

    list_display = ("created", "kind", "subjects")
    ordering = ("id",)
    actions = None
    fields = ("created", "kind", "subjects", "details")
    readonly_fields = fields

    @admin.display(description="written", ordering="created_at")
    def created(self, notice: PushNotice) -> str | None:
        return when(notice.created_at)
