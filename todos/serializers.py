"""The todo's JSON shape, with strict types and length limits."""

from rest_framework import serializers

from project.fields import StrictBooleanField, StrictCharField
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


def _query_error(name: str, rule: str) -> dict:
    text = f"Invalid query parameter '{name}': {rule}."
    return dict.fromkeys(
        (
            "invalid",
            "invalid_choice",
            "max_value",
            "min_value",
            "max_length",
            "max_string_length",
            "blank",
        ),
        text,
    )


class TodoListQuerySerializer(serializers.Serializer):
    """Query parameters of GET /todos: done, title (prefix), page and limit."""

    done = serializers.ChoiceField(
        choices=("true", "false"),
        required=False,
        error_messages=_query_error("done", "use true or false"),
    )
    title = serializers.CharField(
        max_length=TITLE_MAX_LENGTH,
        required=False,
        error_messages=_query_error("title", f"at most {TITLE_MAX_LENGTH} characters"),
    )
    page = serializers.IntegerField(
        min_value=1,
        max_value=1_000_000,
        required=False,
        error_messages=_query_error("page", "a whole number from 1"),
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=100,
        required=False,
        error_messages=_query_error("limit", "a whole number from 1 to 100"),
    )
