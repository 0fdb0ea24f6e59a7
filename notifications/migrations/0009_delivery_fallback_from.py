from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0008_pushsubscription_to_members"),
    ]

    operations = [
        # A database default: the night's and the fallback's raw INSERTs leave the column out.
        migrations.AddField(
            model_name="delivery",
            name="fallback_from",
            field=models.CharField(
                blank=True,
                choices=[("push", "Web push"), ("sms", "SMS"), ("whatsapp", "WhatsApp"), ("email", "Email")],
                db_default="",
                default="",
                max_length=10,
            ),
        ),
    ]
