"""The real broker (Redis in CI) and a real worker: the tick and the dispatcher end to end."""

import time
from datetime import time as dt_time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import EvaluationRun
from campaigns.tasks import evaluation_tick_task
from members.models import Member
from notifications.models import Delivery, RecordedMessage
from notifications.tasks import dispatch_due_task
from tests.conftest import business_make, campaign_make
from winback.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OperationalError as exc:
            # SQLite's test database is in memory with a shared cache: while the worker thread
            # writes, a read from this thread gets "table is locked" at once (no busy wait).
            if "locked" not in str(exc):
                raise
        time.sleep(0.2)
    return False


def test_the_tick_and_the_dispatcher_run_through_a_real_worker_and_broker():
    assert settings.CELERY_BROKER_URL.startswith(("redis://", "filesystem://"))
    business = business_make(timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)
    # Send-at midnight (email has no quiet hours), so tonight's deliveries are due at once.
    local_now = timezone.now().astimezone(business.tzinfo)
    campaign_make(business, channels=["email"], send_at=dt_time(0, 0))
    with scope(business=business.pk):
        Member.objects.bulk_create(
            Member(
                business=business,
                first_name=f"R{i}",
                email=f"r{i}@example.com",
                card_code=f"R{i:04d}",
                consent_email=True,
                joined_on=local_now.date() - timedelta(days=300),
                last_purchase_at=timezone.now() - timedelta(days=40),
                purchase_count=2,
            )  # fmt: skip
            for i in range(25)
        )
    app.control.purge()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        evaluation_tick_task.delay()
        with scopes_disabled():
            assert wait_for(lambda: EvaluationRun.objects.filter(business=business).exists())
            run = EvaluationRun.objects.get(business=business)
        assert run.sends == 25 and run.deliveries == 25

        dispatch_due_task.delay()
        with scopes_disabled():
            assert wait_for(lambda: Delivery.objects.filter(status="sent").count() == 25)
            assert RecordedMessage.objects.count() == 25
