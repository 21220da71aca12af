"""Lookalike keys again, now without combining marks: `rt2víctim` is a lookalike of `rt2victim`."""

from django.apps import apps as global_apps
from django.conf import settings
from django.db import migrations

from accounts.lookalikes import fill


def rekey_every_user(apps, schema_editor):
    """Every user's keys, recomputed; the earliest account keeps a key lookalikes share."""
    User = apps.get_model(settings.AUTH_USER_MODEL)
    UsernameSkeleton = apps.get_model("accounts", "UsernameSkeleton")
    UsernameSkeleton.objects.all().delete()
    username_field = global_apps.get_model(settings.AUTH_USER_MODEL).USERNAME_FIELD
    fill(User._default_manager, UsernameSkeleton.objects, username_field=username_field)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_username_skeletons")]

    operations = [migrations.RunPython(rekey_every_user, migrations.RunPython.noop, elidable=True)]
