"""The todo API's own errors, each with its text and stable code."""

from rest_framework import exceptions, status


class TodoNotFound(exceptions.NotFound):
    """A todo id that is unknown or another user's: one answer for both."""

    default_detail = "Todo not found"
    default_code = "todo_not_found"


class InvalidTodoRequest(exceptions.ValidationError):
    """A todo body or filter the contract refuses, with its own message."""

    default_code = "invalid_request"


class TodoLimitReached(exceptions.APIException):
    """The owner's list already holds TODO_LIMIT_PER_USER todos: nothing is added."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "todo_limit_reached"

    def __init__(self, limit: int) -> None:
        super().__init__(f"You have reached the limit of {limit} todos. Delete some to add more.")
