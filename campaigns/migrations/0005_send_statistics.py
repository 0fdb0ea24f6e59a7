"""Tell PostgreSQL's planner that a campaign belongs to one business: without these extended
statistics it multiplies the two filters' selectivities, expects one row where there are
hundreds, and picks a slow nested-loop anti-join for the nightly selection (docs/benchmarks.md)."""

from django.db import migrations

CREATE = (
    "CREATE STATISTICS IF NOT EXISTS campaignsend_campaign_business (dependencies) "
    "ON campaign_id, business_id FROM campaigns_campaignsend"
)
DROP = "DROP STATISTICS IF EXISTS campaignsend_campaign_business"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0004_lean_outbox_indexes")]
    operations = [migrations.RunPython(create, drop)]
