"""The todo's JSON shape, with strict types and length limits."""

from datetime import UTC

from rest_framework import serializers

from project.fields import StrictBooleanField, StrictCharField, query_errors
from todos.models import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, Todo

TITLE_REQUIRED = "Invalid request. 'title' is required."


def _timestamp() -> serializers.DateTimeField:
    """A read-only timestamp, in UTC whatever TIME_ZONE says, and without looking up the
    current time zone for every value (a list writes two per todo)."""
    return serializers.DateTimeField(read_only=True, default_timezone=UTC)


# Writes every todo's timestamps. Reaching the declared ones through `self.fields` would
# deep-copy all six fields on each request, a tenth of what GET /todos spends in Python.
TIMESTAMP = _timestamp()


class TodoSerializer(serializers.Serializer):
    """`{id, title, done, description}` plus read-only timestamps.

    Every field is declared, in the order the JSON has them: a ModelSerializer would
    rebuild them from the model on each request, which GET /todos pays for.
    """

    id = serializers.IntegerField(read_only=True)
    title = StrictCharField(
        max_length=TITLE_MAX_LENGTH,
        error_messages={
            "required": TITLE_REQUIRED,
            "null": TITLE_REQUIRED,
            "blank": "Invalid request. 'title' must not be empty.",
        },
    )
    done = StrictBooleanField(required=False)
    description = StrictCharField(
        max_length=DESCRIPTION_MAX_LENGTH,
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
    )
    created_at = _timestamp()
    updated_at = _timestamp()

    def create(self, validated_data) -> Todo:
        return Todo.objects.create(**validated_data)

    def update(self, todo: Todo, validated_data) -> Todo:
        for name, value in validated_data.items():
            setattr(todo, name, value)
        todo.save()
        return todo

    def to_representation(self, todo: Todo) -> dict:
        """The same dict DRF's generic loop builds, written out: GET /todos runs it per todo."""
        return {
            "id": todo.id,
            "title": todo.title,
            "done": todo.done,
            "description": todo.description,
            "created_at": TIMESTAMP.to_representation(todo.created_at),
            "updated_at": TIMESTAMP.to_representation(todo.updated_at),
        }


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
