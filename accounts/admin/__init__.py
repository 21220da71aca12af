"""The admin as the session console: sessions, their tokens, and users' sessions."""

from accounts.admin import sessions, tokens, users

__all__ = ["sessions", "tokens", "users"]
