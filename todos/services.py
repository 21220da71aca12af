"""Writes to a todo list that one insert cannot keep safe: the per-user limit."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from todos.exceptions import TodoLimitReached
from todos.models import Todo


def todo_create(*, owner, **fields) -> Todo:
    """Add a todo to `owner`'s list; TodoLimitReached (409) if it is full, and nothing written.

    Creates of one owner take turns, so two at the limit minus one cannot both find room:
    on PostgreSQL each locks the owner's row first; on SQLite the transaction holds the
    database's write lock from its BEGIN IMMEDIATE.
    """
    limit = settings.TODO_LIMIT_PER_USER
    with transaction.atomic():
        # FOR NO KEY UPDATE, not FOR UPDATE: rows that merely reference the user (a new
        # session, a security event) take a key-share lock on it, and must not wait here.
        users = get_user_model()._default_manager.select_for_update(no_key=True)
        users.filter(pk=owner.pk).exists()
        if Todo.objects.filter(owner=owner).count() >= limit:
            raise TodoLimitReached(limit)
        return Todo.objects.create(owner=owner, **fields)
