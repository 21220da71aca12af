"""A todo belongs to exactly one user."""

from django.conf import settings
from django.db import models

# The columns' own limits (and the admin form's). The API's are settings at most these
# (TODO_TITLE_MAX_LENGTH, TODO_DESCRIPTION_MAX_LENGTH): changing them needs no migration.
TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 10_000


class Todo(models.Model):
    """One item on a user's list."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="todos"
    )
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    # The contract distinguishes "no description" (null) from an empty one.
    description = models.TextField(  # noqa: DJ001
        null=True, blank=True, max_length=DESCRIPTION_MAX_LENGTH
    )
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        indexes = [models.Index(fields=["owner", "id"], name="todo_owner_id")]

    def __str__(self) -> str:
        return self.title
