"""Todos in the admin, for support staff."""

from django.contrib import admin

from todos.models import Todo


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):
    """Todos, searchable by owner and title."""

    list_display = ("id", "title", "owner", "done", "created_at")
    list_filter = ("done",)
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username")
    raw_id_fields = ("owner",)
