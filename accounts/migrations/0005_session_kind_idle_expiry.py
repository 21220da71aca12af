"""Sessions get a kind (API or admin sign-in), an idle expiry, and the client a rotation served."""

from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce, Least

import accounts.devices


def fill_idle_expiry(apps, schema_editor):
    """The idle expiry is the current refresh token's; a session without one, its absolute."""
    Session = apps.get_model("accounts", "Session")
    OutstandingToken = apps.get_model("token_blacklist", "OutstandingToken")
    current = OutstandingToken.objects.filter(pk=OuterRef("current_token_id")).values("expires_at")
    Session.objects.update(
        idle_expires_at=Least(Coalesce(Subquery(current[:1]), F("expires_at")), F("expires_at"))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_session_devices"),
        ("token_blacklist", "0013_alter_blacklistedtoken_options_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="kind",
            field=models.CharField(
                choices=[("api", "API (tokens)"), ("admin", "Admin sign-in")],
                default="api",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="session",
            name="idle_expires_at",
            field=models.DateTimeField(null=True, help_text="Idle expiry; each rotation renews it."),
        ),
        migrations.RunPython(fill_idle_expiry, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="session",
            name="idle_expires_at",
            field=models.DateTimeField(help_text="Idle expiry; each rotation renews it."),
        ),
        migrations.AddField(
            model_name="session",
            name="refreshed_network",
            field=models.CharField(blank=True, max_length=49),
        ),
        migrations.AddField(
            model_name="session",
            name="refreshed_device",
            field=models.CharField(
                blank=True, max_length=accounts.devices.DEVICE_MAX_LENGTH
            ),
        ),
    ]
