"""The admin as the session console: sessions, their tokens, users' sessions, the record."""

from accounts.admin import events, groups, sessions, tokens, users

__all__ = ["events", "groups", "sessions", "tokens", "users"]
