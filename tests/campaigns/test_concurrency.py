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


def test_d_and_the_next_date_of_one_business_evaluated_at_once_write_each_member_once():
    """Two workers on D and D+1 (a catch-up split over two batches, or run_winback beside the
    beat): D+1 must read D's sends, not collide with them and roll back as a NightConflict."""
    from django.db import transaction

    business = business_make(timezone="Asia/Kuala_Lumpur")
    campaign_make(business, channels=["sms"])
    lapsed = populate(business, 50)  # lapsed 30 days before D: due on D and, unsent, on D+1 too
    late = member_make(business, phone="+60123456789", consents={"sms": True})
    with time_machine.travel(at_local(business, D - timedelta(days=13), 12), tick=False):
        visit_make(late)  # first due on D+1
    now = engine.local_day_start(D + timedelta(days=1), business.tzinfo)
    d_written, release = threading.Event(), threading.Event()
    results, errors = {}, []

    def evaluate_d():
        try:
            with transaction.atomic(), scope(business=business.pk):
                results[D] = engine.business_evaluate(business=business, local_date=D, now=now).run.sends
                d_written.set()
                release.wait(10)  # D's transaction still open while D+1 starts
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            d_written.set()
            connection.close()

    def evaluate_next():
        try:
            with scope(business=business.pk):
                result = engine.business_evaluate(business=business, local_date=D + timedelta(days=1), now=now)
                results[D + timedelta(days=1)] = result.run.sends
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    first, second = threading.Thread(target=evaluate_d), threading.Thread(target=evaluate_next)
    first.start()
    assert d_written.wait(10)
    second.start()
    assert waiting_on_a_lock(), "D+1 should wait for D to commit"
    release.set()
    first.join()
    second.join()

    assert errors == []
    assert results == {D: 50, D + timedelta(days=1): 1}
    assert sorted((s.member_id, s.local_date) for s in sends(business)) == sorted(
        [(m.pk, D) for m in lapsed] + [(late.pk, D + timedelta(days=1))]
    )


def waiting_on_a_lock(timeout: float = 10.0) -> bool:
    """Whether another connection is (soon) blocked on a lock in this database."""
    import time

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False
