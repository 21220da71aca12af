"""The todos app: each user's own todo list."""

from django.apps import AppConfig


class TodosConfig(AppConfig):
    """Per-user todos."""

    name = "todos"
    default_auto_field = "django.db.models.BigAutoField"
