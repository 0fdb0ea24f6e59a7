"""No night lost (SPEC §5): whole dates missed during downtime are caught up, within a bounded
window, oldest first, each once — through the real tick and batch tasks, the broker hop aside."""

from datetime import UTC, date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns import engine, tasks
from campaigns.models import EvaluationRun
from tests.campaigns.helpers import at_local, sends
from tests.conftest import business_make, campaign_make, member_make, visit_make

D = date(2026, 5, 12)  # a Tuesday


def tick() -> None:
    """The beat's tick at the frozen clock, its batches run at once, as a worker would."""

    def run_now(**kwargs):
        tasks.businesses_evaluate_task.apply(kwargs=kwargs)

    with mock.patch.object(tasks.businesses_evaluate_task, "delay", side_effect=run_now):
        tasks.evaluation_tick_task.apply()


def runs(business, since: date = date.min) -> list[EvaluationRun]:
    """The business's runs from ``since`` on, in the order they were written."""
    with scope(business=business.pk):
        return list(EvaluationRun.objects.filter(local_date__gte=since).order_by("pk"))


def lapsed_member(business, *, due_on: date, inactivity_days: int = 14):
    """A member who last purchased exactly ``inactivity_days`` before ``due_on``: first due that day."""
    member = member_make(business, phone="+60123456789", consents={"sms": True})
    with time_machine.travel(at_local(business, due_on - timedelta(days=inactivity_days), 12), tick=False):
        visit_make(member)
    return member


def test_the_beat_down_from_23h_on_d_to_02h_on_d_plus_2_evaluates_d1_and_d2_once_oldest_first(db):
    with time_machine.travel(at_local_zone("America/New_York", D - timedelta(days=20), 9), tick=False) as clock:
        business = business_make(timezone="America/New_York")
        campaign_make(business, channels=["sms"], inactivity_days=14)
        first = lapsed_member(business, due_on=D + timedelta(days=1))
        second = lapsed_member(business, due_on=D + timedelta(days=2))

        clock.move_to(at_local(business, D, 0, 1))
        tick()
        clock.move_to(at_local(business, D, 23, 0))
        tick()  # the last tick before the beat stops
        back = at_local(business, D + timedelta(days=2), 2, 0)
        clock.move_to(back)
        tick()
        clock.move_to(back + timedelta(seconds=10))
        tick()  # a second beat
        written = (len(runs(business, since=D)), len(sends(business)))
        clock.move_to(back + timedelta(minutes=5))
        tick()

    got = runs(business, since=D)
    assert [r.local_date for r in got] == [D, D + timedelta(days=1), D + timedelta(days=2)]  # pk order: oldest first
    assert [r.started_at for r in got[1:]] == [back, back]
    assert all(r.finished_at == back for r in got[1:])
    assert [(s.member_id, s.local_date) for s in sends(business)] == [
        (first.pk, D + timedelta(days=1)),
        (second.pk, D + timedelta(days=2)),
    ]
    assert (len(runs(business, since=D)), len(sends(business))) == written == (3, 2)


def at_local_zone(zone: str, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))


ZONES = ["Asia/Kuala_Lumpur", "America/New_York", "Pacific/Auckland", "America/Santiago", "Europe/London"]


@pytest.mark.parametrize(
    ("stop", "hours_down"),
    [
        (datetime(2026, 3, 7, 3, 0, tzinfo=UTC), 50),  # New York springs forward on the 8th
        (datetime(2026, 9, 5, 3, 0, tzinfo=UTC), 50),  # Santiago: midnight of the 6th does not exist
        (datetime(2026, 9, 26, 0, 0, tzinfo=UTC), 50),  # Auckland springs forward on the 27th
        (datetime(2026, 10, 31, 3, 0, tzinfo=UTC), 51),  # New York falls back on Nov 1st
        (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), 49),  # London springs forward on the 29th
    ],
)
def test_businesses_in_several_zones_catch_up_every_missed_local_date_across_dst_nights(db, stop, hours_down):
    with time_machine.travel(stop - timedelta(days=10), tick=False) as clock:
        businesses = [business_make(timezone=zone) for zone in ZONES]
        now = stop - timedelta(days=1)
        while now < stop:  # a day of ticks every 5 minutes, then the beat stops
            clock.move_to(now)
            tick()
            now += timedelta(minutes=5)
        before = {b.pk: max(r.local_date for r in runs(b)) for b in businesses}
        back = stop + timedelta(hours=hours_down)
        clock.move_to(back)
        tick()
        clock.move_to(back + timedelta(minutes=5))
        tick()

    for business in businesses:
        got = runs(business)
        dates = [r.local_date for r in got]
        today = back.astimezone(business.tzinfo).date()
        assert dates == sorted(set(dates)), business.timezone  # each date once, in pk order oldest first
        assert dates[-1] == today
        assert all(b - a == timedelta(days=1) for a, b in zip(dates, dates[1:], strict=False)), business.timezone
        caught = [r.local_date for r in got if r.started_at == back]
        missed = (today - before[business.pk]).days
        assert missed >= 2, business.timezone  # at least one whole date lost without the catch-up
        assert caught == [before[business.pk] + timedelta(days=k) for k in range(1, missed + 1)]


def test_a_longer_downtime_is_caught_up_only_within_the_window(db):
    with time_machine.travel(at_local_zone("Asia/Kuala_Lumpur", D - timedelta(days=30), 9), tick=False) as clock:
        business = business_make(timezone="Asia/Kuala_Lumpur")
        clock.move_to(at_local(business, D, 0, 1))
        tick()
        clock.move_to(at_local(business, D + timedelta(days=7), 3))
        tick()

    # Down from D to D+7: D+4, D+5 and D+6 (three days back) and D+7; D+1 to D+3 are lost.
    assert [r.local_date for r in runs(business, since=D)] == [D] + [D + timedelta(days=k) for k in range(4, 8)]
    assert engine.CATCH_UP_DAYS == 3


def test_a_business_created_today_gets_no_back_dated_nights(db):
    with time_machine.travel(at_local_zone("Europe/London", D, 10), tick=False) as clock:
        business = business_make(timezone="Europe/London")
        campaign_make(business, channels=["sms"], activated_at=at_local(business, D, 10))
        lapsed_member(business, due_on=D - timedelta(days=2))
        clock.move_to(at_local(business, D, 10, 5))
        tick()
        clock.move_to(at_local(business, D + timedelta(days=1), 0, 1))
        tick()

    assert [r.local_date for r in runs(business)] == [D, D + timedelta(days=1)]
    assert [s.local_date for s in sends(business)] == [D + timedelta(days=1)]  # activated on D: from D+1


def test_a_business_created_yesterday_is_caught_up_from_the_day_it_was_created_only(db):
    with time_machine.travel(at_local_zone("Europe/London", D, 15), tick=False) as clock:
        business = business_make(timezone="Europe/London")
        clock.move_to(at_local(business, D + timedelta(days=1), 2))  # no tick since it was created
        tick()

    assert [r.local_date for r in runs(business)] == [D, D + timedelta(days=1)]


def test_the_catch_up_never_evaluates_a_date_older_than_the_last_evaluated_one(db):
    with time_machine.travel(at_local_zone("Asia/Kuala_Lumpur", D - timedelta(days=30), 9), tick=False) as clock:
        business = business_make(timezone="Asia/Kuala_Lumpur")
        clock.move_to(at_local(business, D, 0, 1))
        tick()
        # The beat is down on D+1 and D+2; someone evaluates D+2 by hand.
        clock.move_to(at_local(business, D + timedelta(days=2), 9))
        with scope(business=business.pk):
            engine.business_evaluate(business=business, local_date=D + timedelta(days=2), now=timezone.now())
        clock.move_to(at_local(business, D + timedelta(days=3), 0, 1))
        tick()

    # D+1 stays unevaluated: spacing and the frequency cap read the nights in date order.
    assert [r.local_date for r in runs(business, since=D)] == [D, D + timedelta(days=2), D + timedelta(days=3)]


def test_the_tick_sends_all_the_dates_of_one_business_in_one_batch_oldest_first(db):
    with time_machine.travel(at_local_zone("Asia/Kuala_Lumpur", D - timedelta(days=30), 9), tick=False) as clock:
        made = [business_make(timezone="Asia/Kuala_Lumpur") for _ in range(3)]
        clock.move_to(at_local(made[0], D, 0, 1))
        tick()
        clock.move_to(at_local(made[0], D + timedelta(days=2), 3))
        with mock.patch.object(tasks, "BATCH", 2), mock.patch.object(tasks.businesses_evaluate_task, "delay") as delay:
            assert tasks.evaluation_tick_task.apply().get() == 6

    batches = [call.kwargs["pairs"] for call in delay.call_args_list]
    d1, d2 = (D + timedelta(days=1)).isoformat(), (D + timedelta(days=2)).isoformat()
    assert batches == [
        [[made[0].pk, d1], [made[0].pk, d2], [made[1].pk, d1], [made[1].pk, d2]],
        [[made[2].pk, d1], [made[2].pk, d2]],
    ]
    with scopes_disabled():
        assert EvaluationRun.objects.filter(local_date__gt=D).count() == 0


@pytest.mark.postgres
def test_the_ticks_run_look_up_reads_only_the_window_from_an_index_leading_with_the_date(db):
    """The tick reads runs through ``run_local_date`` and touches only the window's nights: a year
    of history behind them costs nothing (checked with EXPLAIN ANALYZE on PostgreSQL)."""
    import json

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from members.models import Business

    today = date(2026, 5, 12)
    with time_machine.travel(datetime(2025, 1, 1, tzinfo=UTC), tick=False):
        businesses = Business.objects.bulk_create(
            Business(name=f"B{i}", slug=f"history-{i}", timezone=ZONES[i % len(ZONES)]) for i in range(50)
        )
    with scopes_disabled():
        EvaluationRun.objects.bulk_create(
            EvaluationRun(business=b, local_date=today - timedelta(days=k), started_at=timezone.now())
            for b in businesses
            for k in range(1, 366)
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_evaluationrun")

    with CaptureQueriesContext(connection) as queries:
        due = engine.evaluations_due(now=datetime(2026, 5, 12, 6, 0, tzinfo=UTC))  # the 12th everywhere
    assert len(due) == 50 and {d for _, d in due} == {today}
    (lookup,) = [q["sql"] for q in queries.captured_queries if "campaigns_evaluationrun" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {lookup}")
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    every = list(nodes(plan[0]["Plan"]))
    assert not [n for n in every if n["Node Type"] == "Seq Scan"]
    # An index-only scan once vacuumed, a bitmap scan on fresh rows: the same index either way.
    (index_scan,) = [n for n in every if "Index Name" in n]
    assert index_scan["Index Name"] == "run_local_date"
    assert index_scan["Index Cond"].startswith("(local_date >=")
    # Only the window's rows: 50 businesses × at most CATCH_UP_DAYS + 1 dates back from the
    # earliest local today, of the 18,250 runs in the table.
    assert index_scan["Actual Rows"] <= 50 * (engine.CATCH_UP_DAYS + 2)


@pytest.mark.parametrize("channel", ["push", "email", "sms"])
def test_a_caught_up_night_sends_at_the_next_send_at_time_not_at_once_in_the_night(db, channel):
    """D+1 evaluated at 02:00 on D+2 (its 09:00 long past): its messages go out at 09:00 on D+2, as
    any night's do — not at 02:00 (push, email) nor in a burst at 08:00 (SMS)."""
    from notifications.models import Delivery, PushSubscription

    with time_machine.travel(at_local_zone("Europe/London", D - timedelta(days=20), 9), tick=False) as clock:
        business = business_make(timezone="Europe/London")
        campaign_make(business, channels=[channel], inactivity_days=14)
        member = member_make(business, phone="+447400123456", email="a@example.com",
                             consents={channel: True})  # fmt: skip
        if channel == "push":
            with scope(business=business.pk):
                PushSubscription.objects.create(business=business, member=member, endpoint="https://push.example/1",
                                                p256dh="k", auth="a")  # fmt: skip
        with time_machine.travel(at_local(business, D + timedelta(days=1) - timedelta(days=14), 12), tick=False):
            visit_make(member)
        clock.move_to(at_local(business, D, 0, 1))
        tick()
        clock.move_to(at_local(business, D + timedelta(days=2), 2, 0))
        tick()

    with scope(business=business.pk):
        delivery = Delivery.objects.get()
    assert delivery.send.local_date == D + timedelta(days=1)
    assert delivery.scheduled_at == at_local(business, D + timedelta(days=2), 9)


def test_a_night_evaluated_on_time_keeps_a_midnight_send_at(db):
    with time_machine.travel(at_local_zone("Europe/London", D - timedelta(days=20), 9), tick=False) as clock:
        business = business_make(timezone="Europe/London")
        campaign_make(business, channels=["email"], inactivity_days=14, send_at="00:00")
        member = member_make(business, email="a@example.com", consents={"email": True})
        with time_machine.travel(at_local(business, D - timedelta(days=14), 12), tick=False):
            visit_make(member)
        clock.move_to(at_local(business, D, 0, 5))
        tick()

    from notifications.models import Delivery

    with scope(business=business.pk):
        assert Delivery.objects.get().scheduled_at == at_local(business, D, 0)
