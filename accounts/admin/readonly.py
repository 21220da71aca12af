"""Admin pages for rows only the application writes."""


class ReadOnlyMixin:
    """Nobody adds, changes or deletes these rows in the admin; they are there to be read."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
