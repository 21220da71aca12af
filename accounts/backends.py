"""Sign-in whatever the case of the username: Django's ModelBackend, looking it up in any case."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.lookalikes import folded_key


class CaseInsensitiveModelBackend(ModelBackend):
    """ModelBackend, finding the account a username names in any case (user_by_username)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        """The user, if the password is theirs and they may sign in; otherwise None."""
        UserModel = get_user_model()
        if username is None:
            username = kwargs.get(UserModel.USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = user_by_username(username)
        if user is None:
            # Hash anyway, as ModelBackend does: the time taken does not tell that no
            # account has this name (Django ticket #20760).
            UserModel().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


def user_by_username(username: str):
    """The account `username` names: the exact spelling, or else the one account whose
    name differs only by case; None if there is none, or several (which one is a guess)."""
    manager = get_user_model()._default_manager
    try:
        return manager.get_by_natural_key(username)
    except manager.model.DoesNotExist:
        pass
    # Two accounts can differ only by case if made before lookalikes were refused.
    same_but_case = list(manager.filter(username_skeleton__folded=folded_key(username))[:2])
    return same_but_case[0] if len(same_but_case) == 1 else None
