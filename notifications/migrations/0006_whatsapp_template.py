"""WhatsApp templates, and their sync from Twilio's Content API in beat beside the other ticks
(campaigns 0002, members 0005): a template WhatsApp pauses is noticed within a quarter of an hour."""

import django.db.models.deletion
from django.db import migrations, models

NAME, TASK, SECONDS = "winback: sync WhatsApp templates", "notifications.whatsapp_templates_sync_all", 900


def schedule_create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = IntervalSchedule.objects.get_or_create(every=SECONDS, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=NAME, defaults={"task": TASK, "interval": schedule, "enabled": True, "expire_seconds": SECONDS}
    )


def schedule_remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0009_onetimecode_business_recent'),
        ('notifications', '0005_provider_event'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='WhatsAppTemplate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('content_sid', models.CharField(max_length=34, verbose_name='content SID')),
                ('name', models.CharField(max_length=200)),
                ('language', models.CharField(blank=True, max_length=20)),
                ('body', models.TextField(blank=True)),
                ('variables', models.JSONField(blank=True, default=dict)),
                ('category', models.CharField(blank=True, max_length=40)),
                ('status', models.CharField(choices=[('pending', 'Pending approval'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('paused', 'Paused'), ('disabled', 'Disabled')], default='pending', max_length=10)),
                ('quality_rating', models.CharField(choices=[('unknown', 'Unknown'), ('high', 'High'), ('medium', 'Medium'), ('low', 'Low')], default='unknown', max_length=10)),
                ('rejected_reason', models.CharField(blank=True, max_length=500)),
                ('last_synced_at', models.DateTimeField()),
                ('business', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='whatsapp_templates', to='members.business')),
            ],
            options={
                'verbose_name': 'WhatsApp template',
                'constraints': [models.UniqueConstraint(fields=('business', 'content_sid'), name='whatsapp_template_unique_sid')],
            },
        ),
        migrations.RunPython(schedule_create, schedule_remove),
    ]
