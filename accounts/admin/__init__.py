"""The admin as the session console: sessions, their tokens, users' sessions, the record."""

from accounts.admin import events, sessions, tokens, users

__all__ = ["events", "sessions", "tokens", "users"]
