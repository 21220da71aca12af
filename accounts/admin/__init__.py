"""The admin as the session console: sessions, their tokens, users' sessions, the record."""

from accounts.admin import events, groups, keys, push, sessions, tokens, users

__all__ = ["events", "groups", "keys", "push", "sessions", "tokens", "users"]
