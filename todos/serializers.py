"""The todo's JSON shape, with strict types and length limits."""

from rest_framework import serializers

from project.fields import StrictBooleanField, StrictCharField, query_errors
from todos.models import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, Todo

TITLE_REQUIRED = "Invalid request. 'title' is required."


class TodoSerializer(serializers.ModelSerializer):
    """`{id, title, done, description}` plus read-only timestamps."""

    title = StrictCharField(
        max_length=TITLE_MAX_LENGTH,
        error_messages={
            "required": TITLE_REQUIRED,
            "null": TITLE_REQUIRED,
            "blank": "Invalid request. 'title' must not be empty.",
        },
    )
    description = StrictCharField(
        max_length=DESCRIPTION_MAX_LENGTH,
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
    )
    done = StrictBooleanField(required=False)

    class Meta:
        model = Todo
        fields = ("id", "title", "done", "description", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")


class TodoFilterSerializer(serializers.Serializer):
    """Filters of GET /todos: `done`, and a case-insensitive `title` prefix."""

    done = serializers.ChoiceField(
        choices=("true", "false"),
        required=False,
        error_messages=query_errors("done", "use true or false"),
    )
    title = serializers.CharField(
        max_length=TITLE_MAX_LENGTH,
        required=False,
        error_messages=query_errors("title", f"at most {TITLE_MAX_LENGTH} characters"),
    )
