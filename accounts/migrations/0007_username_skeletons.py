"""Lookalike keys for every user: the earliest account keeps a key that lookalikes share."""

import django.db.models.deletion
from django.apps import apps as global_apps
from django.conf import settings
from django.db import migrations, models

from accounts.lookalikes import fill


def key_every_user(apps, schema_editor):
    """Existing lookalikes do not fail the migration: the later ones go without the key."""
    User = apps.get_model(settings.AUTH_USER_MODEL)
    UsernameSkeleton = apps.get_model("accounts", "UsernameSkeleton")
    # Historical models lack USERNAME_FIELD; the installed user model says which it is.
    username_field = global_apps.get_model(settings.AUTH_USER_MODEL).USERNAME_FIELD
    fill(User._default_manager, UsernameSkeleton.objects, username_field=username_field)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_signing_keys_resource_servers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="UsernameSkeleton",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="username_skeleton",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("folded", models.CharField(db_index=True, max_length=64)),
                ("skeleton", models.CharField(max_length=64, null=True, unique=True)),
                ("folded_skeleton", models.CharField(max_length=64, null=True, unique=True)),
                ("upper_skeleton", models.CharField(max_length=64, null=True, unique=True)),
            ],
        ),
        migrations.RunPython(key_every_user, migrations.RunPython.noop, elidable=True),
    ]
