"""Settling what a batch did: each chunk's results written with their events, permanent errors
acted on, quiet-hours deferrals paced back into the outbox, and the sends' outcomes moved on."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Case, CharField, Count, DateTimeField, Exists, Max, OuterRef, Q, Value, When
from django.db.models.functions import TruncDate

from campaigns.models import CampaignSend, SendOutcome
from campaigns.pacing import SendCalendar
from campaigns.rules import QUIET_START
from members.models import ConsentSource, Member, RewardStatus, WalletReward

from ..channels import PermanentSendError
from ..models import Delivery, DeliveryStatus
from .outbox import _DELIVERY, _EVENT, _REWARD, _SEND, FAILED_ANY, PENDING_OR_SENDING, WENT_OUT, _events


def _deliveries_defer(
    groups: dict[tuple[int, str, str], list[dict]],
    *,
    campaigns: dict,
    now: datetime,
    start: datetime | None = None,
    detail: str = "quiet hours: deferred",
) -> None:
    """Quiet hours, checked again at the moment of sending (or a budget, from ``start``): back to
    the outbox, paced (``_deliveries_pace``), with their events."""
    _deliveries_pace(groups, campaigns=campaigns, now=now, start=start)
    rows = [(r["id"], r["business_id"]) for group in groups.values() for r in group]
    _events(rows, DeliveryStatus.SCHEDULED, now, detail)


def _deliveries_pace(
    groups: dict[tuple[int, str, str], list[dict]],
    *,
    campaigns: dict,
    now: datetime,
    from_now: bool = False,
    start: datetime | None = None,
) -> dict[int, datetime]:
    """Queued deliveries back to the outbox, ``scheduled`` when their channel's pacing allows;
    returns their new instants. ``from_now``: from now on where the channel may send now (a
    fallback), else from the next allowed 08:00 (a quiet-hours deferral) — after ``start`` when given
    (a budget's next month).

    Per (campaign, channel), in the member's zone, from the next allowed opening on: one interval
    apart after what each day already holds for that campaign and channel, at most the daily cap
    a day and before 21:00, weekends skipped when the campaign excludes them (SPEC §5: a deferral
    keeps the pacing). One read per member time zone in the batch and one write for the batch.
    Two batches deferring the same campaign at the same moment may share slots; members of one
    campaign in several zones are paced per zone.
    """
    calendars = {
        key: SendCalendar.for_channel(
            campaign=campaigns[key[0]],
            channel=key[1],
            tz=ZoneInfo(key[2]),
            start=start or now,
            # (a quiet channel's calendar moves an opening outside 08:00–21:00 to 08:00 itself)
            opens_at=now.astimezone(ZoneInfo(key[2])).time() if from_now else QUIET_START,
        )
        for key in groups
    }
    business_ids = {campaigns[key[0]].business_id for key in groups}
    taken: dict[tuple[int, str, str], dict[date, tuple[int, datetime]]] = defaultdict(dict)
    for tz_key in {key[2] for key in groups}:
        tz = ZoneInfo(tz_key)
        keys = [key for key in groups if key[2] == tz_key]
        wanted = Q()
        for campaign_id, channel, _ in keys:
            first_day = calendars[(campaign_id, channel, tz_key)].day(0)[0].astimezone(tz).date()
            since = datetime.combine(first_day, time(0)).replace(tzinfo=tz)
            wanted |= Q(campaign_id=campaign_id, channel=channel, scheduled_at__gte=since)
        days = (
            Delivery.objects.filter(wanted, business_id__in=business_ids, status=DeliveryStatus.SCHEDULED)
            .annotate(day=TruncDate("scheduled_at", tzinfo=tz))
            .values_list("campaign_id", "channel", "day")
            .annotate(n=Count("pk"), last=Max("scheduled_at"))
            .order_by()
        )
        for campaign_id, channel, day, n, last in days:
            taken[(campaign_id, channel, tz_key)][day] = (n, last)
    when: dict[int, datetime] = {}
    for key, group in groups.items():
        when.update(zip([r["id"] for r in group], calendars[key].fill(len(group), taken=taken[key]), strict=True))
    Delivery.objects.filter(id__in=list(when), status=DeliveryStatus.QUEUED).update(
        status=DeliveryStatus.SCHEDULED,
        scheduled_at=Case(*[When(id=i, then=Value(at)) for i, at in when.items()], output_field=DateTimeField()),
        updated_at=now,
        lease_expires_at=None,
    )
    return when


def _results_write(results: list[tuple], *, at: datetime) -> None:
    """Write a chunk's outcomes (sent, retry later, failed) and their events; only deliveries
    still ``sending`` change. PostgreSQL: one statement for the whole chunk."""
    if connection.vendor == "postgresql":
        columns = list(zip(*results, strict=True))
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH result AS (SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], "
                "%s::text[], %s::text[]) AS r(id, status, provider_id, retry_at, last_error, detail)), "
                f"written AS (UPDATE {_DELIVERY} d SET status = r.status, "  # noqa: S608
                "provider_id = COALESCE(r.provider_id, d.provider_id), "
                "scheduled_at = COALESCE(r.retry_at, d.scheduled_at), "
                "sent_at = CASE WHEN r.status = %s THEN %s ELSE d.sent_at END, "
                "last_error = r.last_error, updated_at = %s, lease_expires_at = NULL "
                "FROM result r WHERE d.id = r.id AND d.status = %s RETURNING d.id, d.business_id, r.status, r.detail) "
                f"INSERT INTO {_EVENT} (business_id, delivery_id, status, at, detail) "
                "SELECT business_id, id, status, %s, detail FROM written",
                [list(columns[0]), list(columns[2]), list(columns[3]), list(columns[4]), list(columns[5]),
                 list(columns[6]), DeliveryStatus.SENT, at, at, DeliveryStatus.SENDING, at],
            )  # fmt: skip
        return
    sent = {i: p for i, _, status, p, _, _, _ in results if status == DeliveryStatus.SENT}
    by_id = {i: business_id for i, business_id, *_ in results}
    if sent:
        Delivery.objects.filter(id__in=list(sent), status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.SENT,
            provider_id=Case(*[When(id=i, then=Value(p)) for i, p in sent.items()], output_field=CharField()),
            sent_at=at,
            updated_at=at,
            lease_expires_at=None,
            last_error="",
        )
        _events([(i, by_id[i]) for i in sent], DeliveryStatus.SENT, at)
    for i, business_id, status, _, retry_at, error, detail in results:
        if status == DeliveryStatus.SENT:
            continue
        fields = {"scheduled_at": retry_at} if retry_at else {}
        Delivery.objects.filter(pk=i, status=DeliveryStatus.SENDING).update(
            status=status, last_error=error, updated_at=at, lease_expires_at=None, **fields
        )
        _events([(i, business_id)], status, at, detail)


def _act_on(row: dict, exc: PermanentSendError, *, at: datetime) -> None:
    """A permanent error means something: act on it. (A push subscription that is gone the web
    push backend has already deleted, with the chunk's other writes.)"""
    from members.services import member_consent_set

    if exc.action == "withdraw_consent":
        member_consent_set(
            member=Member.objects.get(pk=row["member_id"]),
            channel=row["channel"],
            granted=False,
            source=ConsentSource.PROVIDER,
            at=at,
            note=f"{exc.code} {exc.reason}"[:200],
        )


def _settle_sends(send_ids: set[int], *, returned_sends: set[int], now: datetime) -> None:
    """Move each send's outcome on from its deliveries (set-based): sent once one went out;
    once none is pending, returned, failed or skipped, and its offered reward cancelled."""
    if not send_ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH state AS (SELECT send_id, bool_or(status = ANY(%s)) AS went_out, bool_or(status = ANY(%s)) "
                f"AS pending, bool_or(status = ANY(%s)) AS failed FROM {_DELIVERY} "  # noqa: S608
                "WHERE send_id = ANY(%s::bigint[]) GROUP BY send_id), "
                f"settled AS (UPDATE {_SEND} s SET outcome = CASE WHEN state.went_out THEN %s "
                "WHEN s.id = ANY(%s::bigint[]) THEN %s WHEN state.failed THEN %s ELSE %s END "
                "FROM state WHERE s.id = state.send_id AND s.outcome = %s AND (state.went_out OR NOT state.pending) "
                f"RETURNING s.id, s.outcome) UPDATE {_REWARD} w SET status = %s FROM settled "
                "WHERE w.send_id = settled.id AND settled.outcome <> %s AND w.status = %s",
                [list(WENT_OUT), list(PENDING_OR_SENDING), list(FAILED_ANY), list(send_ids),
                 SendOutcome.SENT, list(returned_sends), SendOutcome.RETURNED, SendOutcome.FAILED,
                 SendOutcome.SKIPPED, SendOutcome.SCHEDULED, RewardStatus.CANCELLED, SendOutcome.SENT,
                 RewardStatus.OFFERED],
            )  # fmt: skip
        return
    deliveries = Delivery.objects.filter(send_id=OuterRef("pk"))
    went_out = deliveries.filter(status__in=WENT_OUT)
    open_ = deliveries.filter(status__in=PENDING_OR_SENDING)
    sends = CampaignSend.objects.filter(pk__in=send_ids, outcome=SendOutcome.SCHEDULED)
    sends.filter(Exists(went_out)).update(outcome=SendOutcome.SENT)
    settled = sends.exclude(Exists(went_out)).exclude(Exists(open_))
    returned = settled.filter(pk__in=returned_sends)
    failed_any = deliveries.filter(status__in=FAILED_ANY)
    WalletReward.objects.filter(send__in=settled.values("pk"), status=RewardStatus.OFFERED).update(
        status=RewardStatus.CANCELLED
    )
    returned.update(outcome=SendOutcome.RETURNED)
    settled.filter(Exists(failed_any)).update(outcome=SendOutcome.FAILED)
    settled.update(outcome=SendOutcome.SKIPPED)
