# PushSubscription moves from notifications to members (a member's device; issue 14's layers):
# only Django's state moves, the table keeps its name, its rows, its constraint and its index.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0009_onetimecode_business_recent"),
        ("notifications", "0005_provider_event"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PushSubscription",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("endpoint", models.URLField(max_length=1000)),
                        ("p256dh", models.CharField(max_length=200)),
                        ("auth", models.CharField(max_length=100)),
                        ("user_agent", models.CharField(blank=True, max_length=300)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_success_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "business",
                            models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="members.business"),
                        ),
                        (
                            "member",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="push_subscriptions",
                                to="members.member",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "notifications_pushsubscription",
                        "constraints": [
                            models.UniqueConstraint(fields=("member", "endpoint"), name="push_unique_endpoint")
                        ],
                        "indexes": [models.Index(fields=["business", "member"], name="push_business_member")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
