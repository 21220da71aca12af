"""Label the devices of sessions opened before sessions had a device label."""

from django.db import migrations

BATCH = 2000


def label_devices(apps, schema_editor):
    from accounts.devices import device_label

    Session = apps.get_model("accounts", "Session")
    unlabelled = Session.objects.filter(device="").exclude(user_agent="").order_by("pk")
    last = None
    while True:
        batch = unlabelled if last is None else unlabelled.filter(pk__gt=last)
        rows = list(batch.only("pk", "user_agent")[:BATCH])
        if not rows:
            return
        for session in rows:
            session.device = device_label(session.user_agent)
        Session.objects.bulk_update(rows, ["device"])
        last = rows[-1].pk


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_security_events")]

    operations = [migrations.RunPython(label_devices, migrations.RunPython.noop)]
