"""The keys that tell a username from its lookalikes (accounts.lookalikes keeps them)."""

from django.conf import settings
from django.db import models


class UsernameSkeleton(models.Model):
    """The keys that tell a user's name from its lookalikes (accounts.lookalikes): one row each.

    Every key is a SHA-256 of a form of the name. `folded` (the name case-folded) is
    how login finds a name typed in another case. The three skeletons are unique: of
    two lookalike names saved at once, the database keeps one. A skeleton is NULL where
    an account made before this table already held it (`manage.py lookalike_usernames`).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="username_skeleton",
    )
    folded = models.CharField(max_length=64, db_index=True)
    # NULL, not "": a unique index lets any number of rows lack a key, but not share "".
    skeleton = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001
    folded_skeleton = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001
    upper_skeleton = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001

    def __str__(self) -> str:
        return f"lookalike keys of user {self.user_id}"
