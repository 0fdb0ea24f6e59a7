"""The outbox: scheduling, claiming, sending, retries, pause, returns and crashes."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from campaigns import services
from campaigns.models import Campaign
from members.models import Member, WalletReward
from notifications import dispatcher
from notifications.channels import PermanentSendError, TransientSendError
from notifications.channels.recording import RecordingBackend
from notifications.models import DeliveryEvent, MonthlySpend, RecordedMessage
from tests.campaigns.helpers import at_local, deliveries, night, sends
from tests.conftest import business_make, campaign_make, member_make, visit_make

D = date(2026, 3, 20)  # a Friday
KL = ZoneInfo("Asia/Kuala_Lumpur")


@pytest.fixture
def business(db):
    return business_make(name="Kopi", slug="kopi", timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)


def lapsed(business, n=1, *, days=30, **fields):
    fields.setdefault("consents", {"sms": True, "email": True, "whatsapp": True})
    out = []
    for i in range(n):
        m = member_make(business, phone="+60123456789", email=f"x{i}-{id(fields)}@example.com", **fields)
        with time_machine.travel(at_local(business, D, 0, 30), tick=False):
            visit_make(m, at=at_local(business, D - timedelta(days=days), 12))
        out.append(m)
    return out


def run_dispatch(now, *, backends=None):
    """One dispatcher pass, each batch sent inline (what the worker would do)."""
    reports = []

    def enqueue(business_id, ids):
        with scope(business=business_id):
            kwargs = {"delivery_ids": ids, "now_fn": lambda: now}
            if backends:
                kwargs["backends"] = backends
            reports.append(dispatcher.deliveries_send(**kwargs))

    dispatcher.dispatch_due(now=now, enqueue=enqueue)
    return reports


def recorded(business):
    with scope(business=business.pk):
        return list(RecordedMessage.objects.order_by("id"))


# --- scheduling ------------------------------------------------------------------------------------


def test_deliveries_are_scheduled_at_send_at_and_staggered_by_the_interval(business):
    campaign_make(business, channels=["sms"], pacing={"sms": {"interval_seconds": 30, "daily_cap": 0}})
    lapsed(business, 4)

    night(business, D)

    assert [d.scheduled_at for d in deliveries(business)] == [
        at_local(business, D, 9, 0) + timedelta(seconds=30 * i) for i in range(4)
    ]


def test_the_daily_cap_spills_to_the_next_allowed_day(business):
    campaign = campaign_make(
        business, channels=["whatsapp"], pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 2}}
    )
    lapsed(business, 5)

    night(business, D)

    got = [d.scheduled_at for d in deliveries(business)]
    nine = [at_local(business, D + timedelta(days=i), 9) for i in range(3)]
    assert got == [nine[0], nine[0] + timedelta(minutes=1), nine[1], nine[1] + timedelta(minutes=1), nine[2]]
    # The next night's new members queue behind the spill: the cap holds per day.
    lapsed(business, 1, days=31)
    night(business, D + timedelta(days=1))
    newest = deliveries(business, campaign=campaign)[-1]
    assert newest.scheduled_at == nine[2] + timedelta(minutes=1)


def test_without_weekends_a_saturday_send_moves_to_monday(business):
    saturday = date(2026, 3, 21)
    campaign_make(business, include_weekends=False, pacing={"sms": {"interval_seconds": 0, "daily_cap": 1}})
    lapsed(business, 2, days=30)

    night(business, saturday)

    assert [d.scheduled_at for d in deliveries(business)] == [
        at_local(business, date(2026, 3, 23), 9),  # Monday
        at_local(business, date(2026, 3, 24), 9),
    ]


def test_sms_is_held_outside_0800_2100_in_the_members_time_zone_at_dispatch(business):
    campaign_make(business, channels=["sms", "email"], channel_mode="every")
    (london,) = lapsed(business, 1, timezone_name="Europe/London")
    (local,) = lapsed(business, 1)
    night(business, D)
    nine_kl = at_local(business, D, 9)  # 01:00 in London

    run_dispatch(nine_kl)

    by = {(d.member_id, d.channel): d for d in deliveries(business)}
    assert by[(local.pk, "sms")].status == "sent"
    assert by[(london.pk, "email")].status == "sent"  # email has no quiet hours
    held = by[(london.pk, "sms")]
    assert held.status == "scheduled"
    assert held.scheduled_at == datetime(2026, 3, 20, 8, 0, tzinfo=ZoneInfo("Europe/London"))
    run_dispatch(datetime(2026, 3, 20, 8, 0, tzinfo=ZoneInfo("Europe/London")))
    assert deliveries(business, pk=held.pk)[0].status == "sent"


def _send_at(campaign, at: time) -> None:
    """Move a campaign's send-at past the wizard's check (as a campaign saved before it existed)."""
    with scope(business=campaign.business_id):
        Campaign.objects.filter(pk=campaign.pk).update(send_at=at)


FRI, MON, TUE, WED = D, date(2026, 3, 23), date(2026, 3, 24), date(2026, 3, 25)


@pytest.mark.parametrize(
    ("send_at", "days"),
    [
        (time(6, 0), [FRI, MON, TUE]),  # before 08:00: from 08:00 the same day
        (time(21, 0), [MON, TUE, WED]),  # 21:00 is quiet already (saved before the wizard refused it): next allowed day
        (time(22, 0), [MON, TUE, WED]),
    ],
)
def test_a_send_at_in_quiet_hours_is_paced_from_0800_capped_and_skips_weekends(business, send_at, days):
    campaign = campaign_make(business, channels=["whatsapp"], include_weekends=False, send_at=time(9),
                             pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 3}})  # fmt: skip
    _send_at(campaign, send_at)
    lapsed(business, 7)

    night(business, FRI)

    eight = [at_local(business, day, 8) for day in days]
    minute = timedelta(minutes=1)
    assert [d.scheduled_at for d in deliveries(business)] == [
        eight[0], eight[0] + minute, eight[0] + 2 * minute,
        eight[1], eight[1] + minute, eight[1] + 2 * minute,
        eight[2],
    ]  # fmt: skip


def test_a_day_holds_only_the_slots_that_end_before_2100(business):
    # hourly from 09:00: 09:00 … 20:00 is twelve a day, the cap (none) notwithstanding
    campaign_make(business, channels=["sms", "email"], channel_mode="every",
                  pacing={"sms": {"interval_seconds": 3600, "daily_cap": 0},
                          "email": {"interval_seconds": 3600, "daily_cap": 0}})  # fmt: skip
    lapsed(business, 14)

    night(business, D)

    sms = [d.scheduled_at for d in deliveries(business, channel="sms")]
    assert sms == [at_local(business, D, 9 + i) for i in range(12)] + [at_local(business, D + timedelta(days=1), 9 + i)
                                                                       for i in range(2)]  # fmt: skip
    # email has no quiet hours: staggered on past 21:00
    email = [d.scheduled_at for d in deliveries(business, channel="email")]
    assert email == [at_local(business, D, 9) + timedelta(hours=i) for i in range(14)]


def test_the_next_night_queues_behind_deferred_deliveries_for_the_cap(business):
    # given 3 deliveries deferred to Monday 08:00–08:02 (cap 3) by the send-time re-check
    campaign = campaign_make(business, channels=["whatsapp"], include_weekends=False,
                             pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 3}})  # fmt: skip
    lapsed(business, 3)
    night(business, FRI)
    run_dispatch(at_local(business, FRI, 23, 30))
    # when Monday's night adds two more members
    lapsed(business, 2, days=33)
    night(business, MON)

    # then Monday keeps its cap: the new ones go to Tuesday
    newest = [d.scheduled_at for d in deliveries(business, campaign=campaign)][-2:]
    assert newest == [at_local(business, TUE, 9), at_local(business, TUE, 9, 1)]


def test_a_deferral_at_2330_keeps_the_interval_and_the_cap_and_skips_the_weekend(business):
    # given Thursday's and Friday's WhatsApp deliveries (3 a day, a minute apart), and a dispatcher
    # that was down until Friday 23:30
    campaign_make(business, channels=["whatsapp"], include_weekends=False,
                  pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 3}})  # fmt: skip
    lapsed(business, 6)
    night(business, FRI - timedelta(days=1))

    # when it claims all six at 23:30 local
    (report,) = run_dispatch(at_local(business, FRI, 23, 30))

    # then they go back to the outbox a minute apart from Monday 08:00, three a day
    assert report.deferred == 6 and recorded(business) == []
    eight = [at_local(business, day, 8) for day in (MON, TUE)]
    minute = timedelta(minutes=1)
    assert [(d.status, d.scheduled_at) for d in deliveries(business)] == [
        ("scheduled", at) for day in eight for at in (day, day + minute, day + 2 * minute)
    ]


def test_a_deferral_queues_after_what_the_day_already_has(business):
    # given Monday already holding one delivery at 09:00 (of a cap of 2), and Friday's two deferred
    campaign_make(business, channels=["whatsapp"], include_weekends=False,
                  pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 2}})  # fmt: skip
    lapsed(business, 3)
    night(business, FRI)  # Friday 09:00, 09:01; Monday 09:00

    run_dispatch(at_local(business, FRI, 23, 30))

    # then Monday fills after its 09:00 up to the cap, and the rest goes on Tuesday from 08:00
    assert [d.scheduled_at for d in deliveries(business)] == [
        at_local(business, MON, 9), at_local(business, MON, 9, 1), at_local(business, TUE, 8),
    ]  # fmt: skip


def test_a_member_in_another_time_zone_is_deferred_paced_from_0800_there(business):
    # given a Kuala Lumpur business's 09:00 WhatsApp, which is 01:00 for members in London
    campaign_make(business, channels=["whatsapp"], pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 4}})
    (local,) = lapsed(business, 1)
    londoners = lapsed(business, 3, timezone_name="Europe/London")
    night(business, D)  # 09:00 … 09:03 Kuala Lumpur

    run_dispatch(at_local(business, D, 9, 5))

    by = {d.member_id: d for d in deliveries(business)}
    assert by[local.pk].status == "sent"
    london = ZoneInfo("Europe/London")
    assert sorted(by[m.pk].scheduled_at for m in londoners) == [
        datetime(2026, 3, 20, 8, 0, tzinfo=london),
        datetime(2026, 3, 20, 8, 1, tzinfo=london),
        datetime(2026, 3, 20, 8, 2, tzinfo=london),
    ]


def test_the_0800_boundary_on_the_day_london_moves_its_clocks(db):
    # Sunday 29 March 2026: 01:00 GMT becomes 02:00 BST; 08:00 that morning is 07:00 UTC
    london = business_make(timezone="Europe/London", frequency_cap_days=0)
    saturday, sunday = date(2026, 3, 28), date(2026, 3, 29)
    campaign = campaign_make(london, channels=["whatsapp"],
                             pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 0}})  # fmt: skip
    lapsed(london, 2)
    night(london, saturday)

    run_dispatch(at_local(london, saturday, 23, 30))

    assert [d.scheduled_at for d in deliveries(london)] == [
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 1, tzinfo=UTC),
    ]  # fmt: skip
    # and the night schedules a send-at of 06:00 from 08:00 BST too
    _send_at(campaign, time(6, 0))
    lapsed(london, 1, days=33)
    night(london, sunday)
    assert deliveries(london)[-1].scheduled_at == datetime(2026, 3, 29, 7, 2, tzinfo=UTC)


def test_an_sms_campaign_cannot_send_at_night(db):
    from django.core.exceptions import ValidationError

    business = business_make()
    with pytest.raises(ValidationError, match="from 08:00 until 21:00"):
        campaign_make(business, channels=["sms"], send_at="22:30")


# --- sending -------------------------------------------------------------------------------------------


def test_the_dispatcher_sends_personalised_messages_and_keeps_the_history(business):
    campaign_make(
        business,
        channels=["sms", "email"],
        channel_mode="every",
        title="We miss you, {first_name}!",
        body="{business}: {reward} waits for you after {days_away} days.",
        reward={"kind": "free_item", "item": "cup of coffee"},
    )
    (member,) = lapsed(business, 1, first_name="Wei")
    night(business, D)

    reports = run_dispatch(at_local(business, D, 9, 0))

    assert sum(r.sent for r in reports) == 2
    messages = recorded(business)
    assert {(m.channel, m.to) for m in messages} == {("sms", "+60123456789"), ("email", member.email)}
    assert {m.title for m in messages} == {"We miss you, Wei!"}
    assert {m.body for m in messages} == {"Kopi: a free cup of coffee waits for you after 30 days."}
    assert all(m.payload["url"].startswith("http") for m in messages)
    for d in deliveries(business):
        assert d.status == "sent" and d.provider_id.startswith("rec-") and d.attempts == 1
        with scope(business=business.pk):
            history = list(DeliveryEvent.objects.filter(delivery=d).order_by("id").values_list("status", flat=True))
        assert history == ["queued", "sending", "sent"]
    assert [s.outcome for s in sends(business)] == ["sent"]


def test_nothing_is_sent_before_its_time(business):
    campaign_make(business)
    lapsed(business, 1)
    night(business, D)

    assert run_dispatch(at_local(business, D, 8, 59)) == []
    assert recorded(business) == []


class FlakyBackend(RecordingBackend):
    def __init__(self, channel, error):
        super().__init__(channel)
        self.error = error

    def send(self, message):
        raise self.error


def test_transient_errors_retry_with_backoff_then_fail_after_the_limit(business):
    campaign_make(business)
    lapsed(business, 1)
    night(business, D)
    now = at_local(business, D, 9)
    backend = FlakyBackend("sms", TransientSendError("503 from provider"))
    delays = []
    for _ in range(dispatcher.MAX_ATTEMPTS):
        run_dispatch(now, backends=lambda ch, business=None: backend)
        (d,) = deliveries(business)
        if d.status == "scheduled":
            delays.append((d.scheduled_at - now).total_seconds())
            now = d.scheduled_at
    assert delays == [30, 60, 120, 240]
    (d,) = deliveries(business)
    assert (d.status, d.attempts) == ("failed", 5)
    assert "gave up after 5 attempts" in d.last_error
    assert [s.outcome for s in sends(business)] == ["failed"]


def test_retry_after_from_the_provider_is_honoured(business):
    campaign_make(business)
    lapsed(business, 1)
    night(business, D)
    now = at_local(business, D, 9)

    run_dispatch(now, backends=lambda ch, business=None: FlakyBackend(ch, TransientSendError("429", retry_after=600)))

    (d,) = deliveries(business)
    assert d.scheduled_at == now + timedelta(seconds=600)


def test_a_permanent_error_fails_at_once_and_acts_on_its_meaning(business):
    campaign_make(business)
    (member,) = lapsed(business, 1)
    night(business, D)
    error = PermanentSendError("Attempt to send to unsubscribed recipient", code="21610", action="withdraw_consent")

    run_dispatch(at_local(business, D, 9), backends=lambda ch, business=None: FlakyBackend(ch, error))

    (d,) = deliveries(business)
    assert (d.status, d.attempts) == ("failed", 1)
    with scope(business=business.pk):
        m = Member.objects.get(pk=member.pk)
        assert m.consent_sms is False
        assert m.consent_events.filter(channel="sms", granted=False, source="provider").count() == 1


class MixedBackend(RecordingBackend):
    """Refuses one member for good, asks to retry another, sends the rest."""

    def __init__(self, channel, *, refused, busy):
        super().__init__(channel)
        self.refused, self.busy = refused, busy

    def send(self, message):
        if message.member_id == self.refused:
            raise PermanentSendError("invalid number", code="21211")
        if message.member_id == self.busy:
            raise TransientSendError("503 from provider", retry_after=90)
        return super().send(message)


def test_one_chunk_writes_sent_retried_and_failed_outcomes_together(business):
    # given three members in one chunk: one the provider refuses, one it asks to retry later
    campaign_make(business)
    refused, busy, fine = lapsed(business, 3)
    night(business, D)
    now = at_local(business, D, 9)
    backend = MixedBackend("sms", refused=refused.pk, busy=busy.pk)

    # when the chunk is sent
    (report,) = run_dispatch(now, backends=lambda ch, business=None: backend)

    # then each delivery has its own outcome and history, written in one go
    assert (report.sent, report.retried, report.failed) == (1, 1, 1)
    by = {d.member_id: d for d in deliveries(business)}
    assert (by[fine.pk].status, by[fine.pk].last_error, by[fine.pk].sent_at) == ("sent", "", now)
    assert by[fine.pk].provider_id.startswith("rec-")
    assert (by[busy.pk].status, by[busy.pk].provider_id, by[busy.pk].sent_at) == ("scheduled", "", None)
    assert by[busy.pk].scheduled_at == now + timedelta(seconds=90)
    assert by[busy.pk].last_error == "503 from provider"
    assert (by[refused.pk].status, by[refused.pk].last_error) == ("failed", "invalid number")
    assert {d.lease_expires_at for d in by.values()} == {None}
    with scope(business=business.pk):
        history = {
            d.member_id: list(DeliveryEvent.objects.filter(delivery=d).order_by("id").values_list("status", "detail"))
            for d in by.values()
        }
    assert history[fine.pk] == [("queued", ""), ("sending", ""), ("sent", "")]
    assert history[busy.pk] == [("queued", ""), ("sending", ""), ("scheduled", "retry in 90 s: 503 from provider")]
    assert history[refused.pk] == [("queued", ""), ("sending", ""), ("failed", "invalid number")]
    assert [m.to for m in recorded(business)] == ["+60123456789"]
    assert {s.member_id: s.outcome for s in sends(business)} == {
        fine.pk: "sent",
        refused.pk: "failed",
        busy.pk: "scheduled",  # still has a delivery to come
    }


# --- pause and returns -----------------------------------------------------------------------------------


def test_pausing_cancels_every_send_not_yet_made_and_they_do_not_count(business):
    campaign = campaign_make(business, reward={"kind": "bonus_points", "count": 5}, max_sends=1)
    lapsed(business, 3)
    night(business, D)
    with scope(business=business.pk):
        cancelled = services.campaign_pause(campaign=campaign, now=at_local(business, D, 8))

    assert cancelled == 3
    assert run_dispatch(at_local(business, D, 9)) == []
    assert {d.status for d in deliveries(business)} == {"cancelled"}
    assert {s.outcome for s in sends(business)} == {"cancelled"}
    with scope(business=business.pk):
        assert set(WalletReward.objects.values_list("status", flat=True)) == {"cancelled"}
        services.campaign_resume(campaign=campaign)
    night(business, D + timedelta(days=1))  # cancelled sends do not count toward max sends
    assert len(sends(business, outcome="scheduled")) == 3


def test_pausing_after_the_claim_still_stops_the_send(business):
    campaign = campaign_make(business)
    lapsed(business, 2)
    night(business, D)
    now = at_local(business, D, 9)
    claimed = []
    with scopes_disabled():
        dispatcher.dispatch_due(now=now, enqueue=lambda b, ids: claimed.append((b, ids)))
    with scope(business=business.pk):
        services.campaign_pause(campaign=campaign, now=now)
        report = dispatcher.deliveries_send(delivery_ids=claimed[0][1], now_fn=lambda: now)

    assert report.sent == 0
    assert recorded(business) == []


def test_a_member_who_returns_before_the_send_is_skipped(business):
    campaign_make(business, reward={"kind": "bonus_stamps", "count": 1})
    (back, away) = lapsed(business, 2)
    night(business, D)
    with time_machine.travel(at_local(business, D, 8), tick=False):
        visit_make(back)  # bought a coffee at 08:00

    run_dispatch(at_local(business, D, 9))

    by = {s.member_id: s.outcome for s in sends(business)}
    assert by == {back.pk: "returned", away.pk: "sent"}
    assert [m.to for m in recorded(business)] == ["+60123456789"]
    with scope(business=business.pk):
        assert WalletReward.objects.get(member=back).status == "cancelled"


def test_the_returned_check_can_be_turned_off(business):
    campaign_make(business, skip_if_returned=False)
    (back,) = lapsed(business, 1)
    night(business, D)
    with time_machine.travel(at_local(business, D, 8), tick=False):
        visit_make(back)

    run_dispatch(at_local(business, D, 9))

    assert [s.outcome for s in sends(business)] == ["sent"]


def test_consent_withdrawn_after_the_night_is_respected(business):
    from members.services import member_consent_set

    campaign_make(business)
    (member,) = lapsed(business, 1)
    night(business, D)
    with scope(business=business.pk):
        member_consent_set(member=member, channel="sms", granted=False, source="sms_keyword")

    run_dispatch(at_local(business, D, 9))

    assert [d.status for d in deliveries(business)] == ["skipped"]
    assert recorded(business) == []


# --- crashes and leases ----------------------------------------------------------------------------------


class Crash(BaseException):
    """A worker killed mid-batch (not an Exception: nothing catches it)."""


class CrashingBackend(RecordingBackend):
    def __init__(self, channel, after):
        super().__init__(channel)
        self.after = after
        self.calls = 0

    def send(self, message):
        self.calls += 1
        if self.calls > self.after:
            raise Crash
        return super().send(message)


def test_a_worker_killed_mid_batch_sends_nothing_twice_and_loses_nothing_silently(business, monkeypatch):
    monkeypatch.setattr(dispatcher.send, "CHUNK", 50)
    campaign_make(business)
    lapsed(business, 120)  # three chunks of 50
    night(business, D)
    now = at_local(business, D, 9)
    claimed = []
    with scopes_disabled():
        dispatcher.dispatch_due(now=now, enqueue=lambda b, ids: claimed.append(ids))
    backend = CrashingBackend("sms", after=70)
    with scope(business=business.pk), pytest.raises(Crash):
        dispatcher.deliveries_send(
            delivery_ids=claimed[0], now_fn=lambda: now, backends=lambda ch, business=None: backend
        )

    status = [d.status for d in deliveries(business)]
    assert (status.count("sent"), status.count("sending"), status.count("queued")) == (50, 50, 20)

    later = now + dispatcher.LEASE + timedelta(seconds=1)
    run_dispatch(later)

    final = [d.status for d in deliveries(business)]
    assert (final.count("sent"), final.count("unconfirmed")) == (70, 50)
    with scope(business=business.pk):
        sent_ids = list(RecordedMessage.objects.values_list("delivery_id", flat=True))
    assert len(sent_ids) == len(set(sent_ids)) == 70  # the crashed chunk's flush never happened


def test_the_send_task_is_a_batch_not_one_task_per_delivery(business):
    campaign_make(business)
    lapsed(business, 30)
    night(business, D)
    calls = []

    with scopes_disabled():
        report = dispatcher.dispatch_due(now=at_local(business, D, 9), enqueue=lambda b, ids: calls.append(len(ids)))

    assert calls == [30] and report.batches == 1


def test_sending_makes_no_query_per_member(business):
    campaign_make(business, channels=["sms", "email"])
    lapsed(business, 5)
    night(business, D)
    with scope(business=business.pk):  # the month's spend row exists (its first reservation adds two statements)
        MonthlySpend.objects.create(business=business, month=date(2026, 3, 1), updated_at=at_local(business, D))
    few = _queries_to_send(business, at_local(business, D, 9))
    lapsed(business, 20, days=31)
    night(business, D + timedelta(days=1))

    many = _queries_to_send(business, at_local(business, D + timedelta(days=1), 9))

    assert few == many


def _queries_to_send(business, now):
    claimed = []
    with scopes_disabled():
        dispatcher.dispatch_due(now=now, enqueue=lambda b, ids: claimed.append(ids))
    with scope(business=business.pk), CaptureQueriesContext(connection) as ctx:
        report = dispatcher.deliveries_send(delivery_ids=claimed[0], now_fn=lambda: now)
    assert report.sent == len(claimed[0])
    return len(ctx.captured_queries)


def test_each_chunk_costs_a_fixed_number_of_statements(business, monkeypatch):
    # given 24 SMS deliveries due, sent in chunks of 4 or of 8
    monkeypatch.setattr(dispatcher.send, "CHUNK", 4)
    campaign_make(business, channels=["sms"])
    lapsed(business, 24)
    night(business, D)
    now = at_local(business, D, 9)
    claimed = []
    with scopes_disabled():
        dispatcher.dispatch_due(now=now, enqueue=lambda b, ids: claimed.append(ids))
    (ids,) = claimed
    with scope(business=business.pk):  # the month's spend row exists (its first reservation adds two statements)
        MonthlySpend.objects.create(business=business, month=date(2026, 3, 1), updated_at=now)

    # when the first half goes out in three chunks of 4 and the second in two chunks of 6
    with scope(business=business.pk), CaptureQueriesContext(connection) as three:
        assert dispatcher.deliveries_send(delivery_ids=ids[:12], now_fn=lambda: now).sent == 12
    monkeypatch.setattr(dispatcher.send, "CHUNK", 6)
    with scope(business=business.pk), CaptureQueriesContext(connection) as two:
        assert dispatcher.deliveries_send(delivery_ids=ids[12:], now_fn=lambda: now).sent == 12

    # then a chunk is the reservation against the month's budget, the mark "sending", the
    # recorded messages and the results, each with their events in the same statement on
    # PostgreSQL (SQLite: the reservation's four statements and six, and the atomic() blocks are
    # savepoint pairs inside the test's transaction)
    per_chunk = len(three.captured_queries) - len(two.captured_queries)
    assert per_chunk == (4 if connection.vendor == "postgresql" else 3 + 6 + 2 * 2)
    if connection.vendor == "postgresql":
        # the batch's reads (deliveries, campaigns, businesses, rewards), the short codes (an
        # UPDATE in a savepoint pair here, and a read) and one settle statement
        assert len(two.captured_queries) == 4 + 4 + 2 * per_chunk + 1
    assert len(recorded(business)) == 24
    assert {d.status for d in deliveries(business)} == {"sent"}
    assert {s.outcome for s in sends(business)} == {"sent"}


def test_the_night_makes_no_query_per_member(business):
    campaign_make(business, channels=["sms", "email"], reward={"kind": "bonus_points", "count": 3}, max_sends=2)
    campaign_make(business, inactivity_days=30)
    lapsed(business, 3)
    with CaptureQueriesContext(connection) as few:
        night(business, D)
    lapsed(business, 25, days=45)
    with CaptureQueriesContext(connection) as many:
        night(business, D + timedelta(days=1))

    assert len(many.captured_queries) == len(few.captured_queries)
    assert len(sends(business, local_date=D + timedelta(days=1))) == 50


def test_utc_and_local_agree_for_the_frozen_nine_oclock(db):
    assert at_local(business_make(), D, 9).astimezone(UTC) == datetime(2026, 3, 20, 1, 0, tzinfo=UTC)
