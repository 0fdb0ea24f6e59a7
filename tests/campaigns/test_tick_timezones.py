"""Once per local date, at local midnight, in every time zone (SPEC §5)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django_scopes import scope, scopes_disabled

from campaigns import engine
from campaigns.models import EvaluationRun
from members.models import Business
from tests.conftest import business_make

ZONES = ["Asia/Kuala_Lumpur", "America/New_York", "Pacific/Auckland", "America/Santiago"]


def tick(now: datetime) -> list[tuple[int, date]]:
    """What the beat tick does: evaluate every business whose local date has no run yet."""
    done = []
    for business_id, day in engine.evaluations_due(now=now):
        with scopes_disabled():
            business = Business.objects.get(pk=business_id)
        with scope(business=business_id):
            if engine.business_evaluate(business=business, local_date=day, now=now) is not None:
                done.append((business_id, day))
    return done


def runs(business) -> list[tuple[date, datetime]]:
    with scope(business=business.pk):
        return list(EvaluationRun.objects.order_by("local_date").values_list("local_date", "started_at"))


@pytest.mark.parametrize(
    ("zone", "day", "first_instant_utc"),
    [
        ("Asia/Kuala_Lumpur", date(2026, 3, 8), datetime(2026, 3, 7, 16, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 8, 5, 0, tzinfo=UTC)),  # DST starts 02:00
        ("America/New_York", date(2026, 3, 9), datetime(2026, 3, 9, 4, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 11, 1), datetime(2026, 11, 1, 4, 0, tzinfo=UTC)),  # DST ends 02:00
        ("America/New_York", date(2026, 11, 2), datetime(2026, 11, 2, 5, 0, tzinfo=UTC)),
        ("Pacific/Auckland", date(2026, 9, 27), datetime(2026, 9, 26, 12, 0, tzinfo=UTC)),
        ("Pacific/Auckland", date(2026, 9, 28), datetime(2026, 9, 27, 11, 0, tzinfo=UTC)),
        # DST begins at midnight: 00:00 does not exist, the day starts at 01:00 -03.
        ("America/Santiago", date(2026, 9, 6), datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
        # DST ends at midnight: 23:00–23:59 on the 4th happen twice, midnight once.
        ("America/Santiago", date(2026, 4, 5), datetime(2026, 4, 5, 4, 0, tzinfo=UTC)),
    ],
)
def test_the_first_instant_of_a_local_date(zone, day, first_instant_utc):
    start = engine.local_day_start(day, ZoneInfo(zone))

    assert start == first_instant_utc
    assert start.astimezone(ZoneInfo(zone)).date() == day
    assert (start - timedelta(microseconds=1)).astimezone(ZoneInfo(zone)).date() == day - timedelta(days=1)


@pytest.mark.parametrize(
    ("zone", "start", "days"),
    [
        ("Asia/Kuala_Lumpur", datetime(2026, 3, 6, 12, tzinfo=UTC), 3),
        ("America/New_York", datetime(2026, 3, 6, 12, tzinfo=UTC), 4),  # across spring forward
        ("America/New_York", datetime(2026, 10, 30, 12, tzinfo=UTC), 4),  # across fall back
        ("Pacific/Auckland", datetime(2026, 9, 25, 0, tzinfo=UTC), 4),
        ("Pacific/Auckland", datetime(2026, 4, 3, 0, tzinfo=UTC), 4),
        ("America/Santiago", datetime(2026, 9, 4, 12, tzinfo=UTC), 4),  # midnight does not exist
        ("America/Santiago", datetime(2026, 4, 3, 12, tzinfo=UTC), 4),
    ],
)
def test_ticks_every_five_minutes_evaluate_each_local_date_once_at_local_midnight(db, zone, start, days):
    business = business_make(timezone=zone)
    tz = ZoneInfo(zone)
    now = start
    while now < start + timedelta(days=days):
        tick(now)
        tick(now + timedelta(seconds=10))  # a second beat in the same minute
        now += timedelta(minutes=5)

    got = runs(business)
    dates = [d for d, _ in got]
    assert dates == sorted(set(dates))  # one run per local date
    assert dates[0] == start.astimezone(tz).date()
    assert dates[-1] == (now - timedelta(minutes=5)).astimezone(tz).date()
    for day, started in got[1:]:
        first_instant = engine.local_day_start(day, tz)
        assert first_instant <= started < first_instant + timedelta(minutes=5)


def test_a_tick_missed_for_three_hours_is_caught_up_once(db):
    business = business_make(timezone="America/New_York")
    tick(datetime(2026, 3, 7, 4, 50, tzinfo=UTC))  # 23:50 on the 6th
    # downtime: no tick from 23:55 until 03:00 local
    caught = tick(datetime(2026, 3, 7, 8, 0, tzinfo=UTC))
    again = tick(datetime(2026, 3, 7, 8, 5, tzinfo=UTC))

    assert caught == [(business.pk, date(2026, 3, 7))]
    assert again == []
    assert [d for d, _ in runs(business)] == [date(2026, 3, 6), date(2026, 3, 7)]


def test_businesses_in_different_zones_turn_over_at_their_own_midnight(db):
    kl = business_make(timezone="Asia/Kuala_Lumpur")
    ny = business_make(timezone="America/New_York")
    now = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # 00:00 in KL, 12:00 in New York

    due = dict(engine.evaluations_due(now=now))

    assert due[kl.pk] == date(2026, 6, 2)
    assert due[ny.pk] == date(2026, 6, 1)


def test_the_tick_task_fans_out_every_due_business_in_batches(db, settings):
    from unittest import mock

    from campaigns import tasks

    made = [business_make(timezone=tz) for tz in ("Asia/Kuala_Lumpur", "Europe/London") * 3]
    with mock.patch.object(tasks, "BATCH", 4), mock.patch.object(tasks.businesses_evaluate_task, "delay") as delay:
        assert tasks.evaluation_tick_task.apply().get() == 6
    batches = [call.kwargs["pairs"] for call in delay.call_args_list]
    assert [len(b) for b in batches] == [4, 2]
    assert sorted(pk for b in batches for pk, _ in b) == sorted(b.pk for b in made)


def test_a_batch_evaluates_each_business_in_its_scope_and_survives_one_failing(db, caplog):
    from unittest import mock

    from campaigns import tasks

    good, bad, other = business_make(), business_make(), business_make()
    real = engine.business_evaluate

    def evaluate(*, business, **kwargs):
        if business.pk == bad.pk:
            raise RuntimeError("boom")
        return real(business=business, **kwargs)

    day = date(2026, 6, 2)
    with mock.patch.object(engine.tick, "business_evaluate", side_effect=evaluate):
        done = tasks.businesses_evaluate_task.apply(
            kwargs={"pairs": [[good.pk, day.isoformat()], [bad.pk, day.isoformat()], [other.pk, day.isoformat()]]}
        ).get()
    assert done == 2
    with scopes_disabled():
        assert set(EvaluationRun.objects.values_list("business_id", flat=True)) == {good.pk, other.pk}
    assert f"evaluation of business {bad.pk}" in caplog.text
