"""Campaign.channel_mode: one delivery per send on the first reachable channel (the default for new
campaigns), or one per chosen channel.

Existing campaigns get "every": that is how they were activated and how their owners have seen
them send; changing which channels carry an active campaign overnight, behind the owner's back,
would be a surprise. The message step offers the switch (issue 15)."""

from django.db import migrations, models

CHOICES = [("first_reachable", "First channel that reaches them"), ("every", "Every chosen channel")]


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0009_campaign_whatsapp_template"),
    ]

    operations = [
        # The existing rows take the AddField's default; new campaigns the AlterField's.
        migrations.AddField(
            model_name="campaign",
            name="channel_mode",
            field=models.CharField(choices=CHOICES, default="every", max_length=20),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="channel_mode",
            field=models.CharField(choices=CHOICES, default="first_reachable", max_length=20),
        ),
    ]
