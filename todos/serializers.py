"""The todo's JSON shape, with strict types and length limits."""

from datetime import UTC

from django.conf import settings
from django.core.validators import MaxLengthValidator
from rest_framework import serializers

from accounts.fields import StrictBooleanField, StrictCharField, query_errors
from todos.models import TITLE_MAX_LENGTH, Todo
from todos.services import todo_create

TITLE_REQUIRED = "Invalid request. 'title' is required."


def _timestamp() -> serializers.DateTimeField:
    """A read-only timestamp, in UTC whatever TIME_ZONE says, and without looking up the
    current time zone for every value (a list writes two per todo)."""
    return serializers.DateTimeField(read_only=True, default_timezone=UTC)


def max_length(setting: str) -> MaxLengthValidator:
    """A maximum length in characters that the setting gives whenever it is checked.

    Django's validators take a callable limit, and so does the schema (drf-spectacular):
    both follow the setting as it is now, not as it was when this module was imported.
    """

    def limit() -> int:
        return getattr(settings, setting)

    return MaxLengthValidator(
        limit,
        # DRF's own text for a too-long string, filled in by Django's validator.
        message="Ensure this field has no more than %(limit_value)d characters.",
    )


def title_field(**kwargs) -> StrictCharField:
    """A todo's title: required, non-empty, at most TODO_TITLE_MAX_LENGTH characters."""
    return StrictCharField(
        validators=[max_length("TODO_TITLE_MAX_LENGTH")],
        error_messages={
            "required": TITLE_REQUIRED,
            "null": TITLE_REQUIRED,
            "blank": "Invalid request. 'title' must not be empty.",
        },
        **kwargs,
    )


def description_field(**kwargs) -> StrictCharField:
    """A todo's description: null, empty, or at most TODO_DESCRIPTION_MAX_LENGTH characters."""
    return StrictCharField(
        validators=[max_length("TODO_DESCRIPTION_MAX_LENGTH")],
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
        **kwargs,
    )


# Writes every todo's timestamps. Reaching the declared ones through `self.fields` would
# deep-copy all six fields on each request, a tenth of what GET /todos spends in Python.
TIMESTAMP = _timestamp()


class TodoSerializer(serializers.Serializer):
    """`{id, title, done, description}` plus read-only timestamps.

    Every field is declared, in the order the JSON has them: a ModelSerializer would
    rebuild them from the model on each request, which GET /todos pays for.
    """

    id = serializers.IntegerField(read_only=True)
    title = title_field()
    done = StrictBooleanField(required=False)
    description = description_field(required=False)
    created_at = _timestamp()
    updated_at = _timestamp()

    def create(self, validated_data) -> Todo:
        """A new todo of `owner` (given to save()), within the owner's limit."""
        return todo_create(**validated_data)

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
