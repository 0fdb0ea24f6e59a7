# PushSubscription is members' now (members 0012 took over its state); the table stays as it is.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0006_whatsapp_template"),
        ("members", "0012_pushsubscription_from_notifications"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="PushSubscription")],
            database_operations=[],
        ),
    ]
