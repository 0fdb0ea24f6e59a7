"""Assume every operation runs concurrently with itself (PostgreSQL only)."""

import threading
from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection
from django_scopes import scope, scopes_disabled

from campaigns import engine
from notifications import dispatcher
from notifications.models import Delivery, RecordedMessage
from tests.campaigns.helpers import at_local, deliveries, sends
from tests.conftest import business_make, campaign_make, member_make, visit_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
D = date(2026, 3, 20)


def together(n, fn):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run(i):
        try:
            barrier.wait()
            results.append(fn(i))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def populate(business, n):
    with scope(business=business.pk):
        from members.models import Member

        members = Member.objects.bulk_create(
            Member(
                business=business,
                first_name=f"M{i}",
                phone="+60123456789",
                card_code=f"P{i:06d}",
                joined_on=D - timedelta(days=400),
                consent_sms=True,
                last_purchase_at=at_local(business, D - timedelta(days=30), 12),
                purchase_count=1,
            )  # fmt: skip
            for i in range(n)
        )
    return members


def test_two_evaluations_of_one_business_at_once_write_one_night():
    business = business_make(timezone="Asia/Kuala_Lumpur")
    campaign_make(business, channels=["sms"])
    member = member_make(business, phone="+60123456789", consents={"sms": True})
    with time_machine.travel(at_local(business, D, 0, 30), tick=False):
        visit_make(member, days_ago=30)
    populate(business, 300)
    now = engine.local_day_start(D, business.tzinfo)

    def evaluate(_):
        with scope(business=business.pk):
            result = engine.business_evaluate(business=business, local_date=D, now=now)
        return None if result is None else result.run.sends

    results = together(4, evaluate)

    assert sorted(results, key=lambda r: r or 0) == [None, None, None, 301]
    assert len(sends(business)) == 301
    assert len(deliveries(business)) == 301


def test_two_dispatchers_at_once_send_each_of_2000_deliveries_exactly_once():
    business = business_make(timezone="Asia/Kuala_Lumpur")
    campaign_make(business, channels=["sms"])
    populate(business, 2000)
    with scope(business=business.pk):
        engine.business_evaluate(business=business, local_date=D, now=engine.local_day_start(D, business.tzinfo))
    now = at_local(business, D, 10)

    def dispatch(_):
        sent = 0

        def enqueue(business_id, ids):
            nonlocal sent
            with scope(business=business_id):
                sent += dispatcher.deliveries_send(delivery_ids=ids, now_fn=lambda: now).sent

        with scopes_disabled():
            dispatcher.dispatch_due(now=now, enqueue=enqueue, batch_size=100)
        return sent

    per_dispatcher = together(2, dispatch)

    assert sum(per_dispatcher) == 2000
    assert all(n > 0 for n in per_dispatcher)  # both did real work
    with scopes_disabled():
        assert Delivery.objects.filter(status="sent").count() == 2000
        ids = list(RecordedMessage.objects.values_list("delivery_id", flat=True))
    assert len(ids) == len(set(ids)) == 2000
