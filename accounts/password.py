"""Ends sessions whenever a password changes, whichever way it was changed."""

from accounts.users import sessions_revoke_on_password_change


class RevokeSessionsOnPasswordChange:
    """A password "validator" used for Django's password_changed() hook.

    Django calls password_changed() after every save that follows set_password():
    the API, the admin's password form, `changepassword`, and plain code alike.
    """

    def validate(self, password, user=None) -> None:
        """Accept every password: this class enforces no rule."""

    def password_changed(self, password, user=None) -> None:
        """Revoke the user's sessions (but the caller's, when changed through the API)."""
        if user is not None:
            sessions_revoke_on_password_change(user)

    def get_help_text(self) -> str:
        return "Changing your password signs you out of your other sessions."
