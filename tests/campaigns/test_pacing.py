"""The send calendar of campaigns/pacing.py: the rules hold for every zone, start and pacing."""

from collections import Counter
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.models import Campaign
from campaigns.pacing import SendCalendar

ZONES = ["Asia/Kuala_Lumpur", "Europe/London", "America/New_York", "America/Santiago", "Australia/Lord_Howe",
         "Pacific/Chatham", "Asia/Kathmandu"]  # fmt: skip


def _check(instants, *, tz, cap, step, weekends, start):
    local = [at.astimezone(tz) for at in instants]
    assert all(at >= start for at in instants)
    assert all(time(8) <= at.time() < time(21) for at in local)
    if not weekends:
        assert all(at.weekday() < 5 for at in local)
    per_day = Counter(at.date() for at in local)
    if cap:
        assert max(per_day.values()) <= cap
    ordered = sorted(instants)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.astimezone(tz).date() == b.astimezone(tz).date():
            assert (b - a).total_seconds() >= step


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    opens_at=st.times(),
    step=st.sampled_from([0, 1, 60, 600, 3600]),
    cap=st.sampled_from([0, 1, 3, 480]),
    weekends=st.booleans(),
    first=st.integers(1, 60),
    second=st.integers(1, 60),
)
def test_deferred_and_night_slots_stay_in_0800_2100_under_the_cap_and_apart(
    zone, start, opens_at, step, cap, weekends, first, second
):
    tz, start = ZoneInfo(zone), start.replace(tzinfo=UTC)
    campaign = Campaign(include_weekends=weekends, pacing={"whatsapp": {"interval_seconds": step, "daily_cap": cap}})

    def calendar():
        return SendCalendar.for_channel(campaign=campaign, channel="whatsapp", tz=tz, start=start, opens_at=opens_at)

    # the night's formula, slot n of a run
    night = [calendar().slot(n) for n in range(first)]
    _check(night, tz=tz, cap=cap, step=step, weekends=weekends, start=start)
    # a deferral, then another one queued after what the first left on each day
    placed = calendar().fill(first, taken={})
    taken = {}
    for at in placed:
        day = at.astimezone(tz).date()
        n, last = taken.get(day, (0, at))
        taken[day] = (n + 1, max(last, at))
    more = calendar().fill(second, taken=taken)
    assert len(placed) == first and len(more) == second
    _check(placed + more, tz=tz, cap=cap, step=step, weekends=weekends, start=start)
    # a day that already holds one late send (a night opening at 20:30): only what fits before 21:00
    day = placed[0].astimezone(tz).date()
    late = datetime.combine(day, time(20, 30)).replace(tzinfo=tz)
    after_late = calendar().fill(second, taken={day: (1, late)})
    _check([late, *after_late], tz=tz, cap=cap, step=step, weekends=weekends, start=min(start, late))
