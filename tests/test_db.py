"""winback/db.py: multi-row INSERTs of plain tuples, as few statements as the backend allows."""

from datetime import UTC, datetime

from django.db import connection
from django_scopes import scopes_disabled

from notifications.models import DeliveryEvent
from winback.db import rows_insert

AT = datetime(2026, 3, 20, 1, 0, tzinfo=UTC)


def test_no_rows_is_no_statement(business, django_assert_num_queries):
    with django_assert_num_queries(0):
        rows_insert(DeliveryEvent, ("business_id", "delivery_id", "status", "at", "detail"), [])


def test_rows_are_written_as_given_in_as_few_statements_as_the_parameter_limit_allows(
    business, django_assert_num_queries
):
    columns = ("business_id", "delivery_id", "status", "at", "detail")
    at = connection.ops.adapt_datetimefield_value(AT)
    rows = [(business.pk, 1000 + i, "queued", at, f"row {i}") for i in range(2500)]
    # PostgreSQL has no parameter limit below 2,500 rows of 5: one statement; SQLite's splits it.
    batch = connection.ops.bulk_batch_size(columns, rows)
    statements = 1 if connection.vendor == "postgresql" else -(-len(rows) // batch)
    assert statements == 1 or batch < len(rows)

    with django_assert_num_queries(statements):
        rows_insert(DeliveryEvent, columns, rows)

    with scopes_disabled():
        written = sorted(DeliveryEvent.objects.values_list("delivery_id", "status", "at", "detail"))
    assert written == [(1000 + i, "queued", AT, f"row {i}") for i in range(2500)]
