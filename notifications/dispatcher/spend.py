"""The send step's money: short links for the billable channels, and each chunk's billable
messages reserved against the business's monthly budget before any provider call.

Past the budget a delivery does what its campaign says (``Campaign.over_budget``):

* fall back (the default): the delivery is skipped "over budget" and the send gets a delivery on
  a free channel the member is reachable on (web push, then email) — or, with none, the in-app
  inbox alone: the send counts as sent and shows there;
* wait: back to the outbox for the 1st of next month from 08:00 in the member's time zone,
  paced like any deferral.

Per chunk: one transaction (a row lock) reserves what fits; a few statements handle what does not.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, DateTimeField, Value, When

from campaigns.models import CampaignSend, OverBudget, SendOutcome
from members.models import BILLABLE_CHANNELS

from .. import budget
from ..channels import Message
from ..models import Delivery, DeliveryStatus, PushSubscription
from .compose import OPEN_LINK_MARGIN
from .outbox import _events
from .settle import _deliveries_defer

SHORT_CODE_BYTES = 8  # secrets.token_urlsafe(8): 11 characters, 64 random bits
FREE_CHANNELS = ("push", "email")


def short_code_new() -> str:
    return secrets.token_urlsafe(SHORT_CODE_BYTES)


def _short_codes_fill(rows: list[dict], *, campaigns: dict, now: datetime) -> None:
    """Give the sends of ``rows`` (billable, without a code yet) their short code, one UPDATE
    and one read for the batch; sets ``short_code`` on each row. A send that got its code
    elsewhere in the meantime keeps it (``short_code IS NULL`` in the UPDATE, then read back)."""
    sends = {r["send_id"]: campaigns[r["campaign_id"]].attribution_days for r in rows}
    if not sends:
        return
    for _ in range(3):  # a collision of 64 random bits is never expected; retried all the same
        codes = {send_id: short_code_new() for send_id in sends}
        try:
            with transaction.atomic():
                CampaignSend.objects.filter(pk__in=list(sends), short_code=None).update(
                    short_code=Case(*[When(pk=i, then=Value(c)) for i, c in codes.items()], output_field=CharField()),
                    short_expires_at=Case(
                        *[When(pk=i, then=Value(now + timedelta(days=days) + OPEN_LINK_MARGIN))
                          for i, days in sends.items()],
                        output_field=DateTimeField(),
                    ),
                )  # fmt: skip
            break
        except IntegrityError:
            continue
    stored = dict(CampaignSend.objects.filter(pk__in=list(sends)).values_list("pk", "short_code"))
    for r in rows:
        r["short_code"] = stored.get(r["send_id"])


class Reservation:
    """A chunk's billable messages reserved against the month: which fit, and giving back
    those the provider never accepted."""

    def __init__(self, *, businesses: dict, now: datetime):
        self.businesses = businesses
        self.now = now
        self.cost: dict[int, Decimal] = {}  # delivery id → reserved amount
        self.month: dict[int, object] = {}  # business id → month reserved in

    def take(self, chunk: list[dict], messages: dict[int, Message]) -> tuple[list[dict], list[dict]]:
        """Reserve the chunk's billable messages (in order, as many as fit); returns the rows to
        send and the rows over the budget."""
        billable: dict[int, list[tuple[dict, Decimal]]] = defaultdict(list)
        for r in chunk:
            if r["channel"] in BILLABLE_CHANNELS:
                m = messages[r["id"]]
                business = self.businesses[r["business_id"]]
                cost = budget.message_cost(business=business, channel=r["channel"], to=m.to, title=m.title,
                                           body=m.body, url=m.url)  # fmt: skip
                billable[r["business_id"]].append((r, cost))
        over: set[int] = set()
        for business_id, items in billable.items():
            business = self.businesses[business_id]
            month = budget.month_of(business=business, now=self.now)
            self.month[business_id] = month
            n = budget.spend_reserve(business=business, month=month, costs=[c for _, c in items], now=self.now)
            for r, cost in items[:n]:
                self.cost[r["id"]] = cost
            over.update(r["id"] for r, _ in items[n:])
        return [r for r in chunk if r["id"] not in over], [r for r in chunk if r["id"] in over]

    def give_back(self, rows: list[dict]) -> None:
        by_business: dict[int, list[Decimal]] = defaultdict(list)
        for r in rows:
            if (cost := self.cost.pop(r["id"], None)) is not None:
                by_business[r["business_id"]].append(cost)
        for business_id, costs in by_business.items():
            budget.spend_release(business=self.businesses[business_id], month=self.month[business_id],
                                 amount=sum(costs, Decimal(0)), messages=len(costs), now=self.now)  # fmt: skip


def _over_budget(rows: list[dict], *, campaigns: dict, businesses: dict, now: datetime) -> tuple[int, int]:
    """What deliveries past the budget do (see the module's docstring); returns (fell back, waiting)."""
    wait: dict[tuple[int, str, str], list[dict]] = defaultdict(list)
    fall_back: list[dict] = []
    for r in rows:
        campaign = campaigns[r["campaign_id"]]
        if campaign.over_budget == OverBudget.WAIT:
            tz_key = r["member_tz"] or businesses[r["business_id"]].timezone
            wait[(r["campaign_id"], r["channel"], tz_key)].append(r)
        else:
            fall_back.append(r)
    if wait:
        by_business = {campaigns[key[0]].business_id for key in wait}
        starts = {b: budget.next_month_start(business=businesses[b], now=now) for b in by_business}
        # One month start per batch: a batch is one business's.
        _deliveries_defer(wait, campaigns=campaigns, now=now, start=max(starts.values()),
                          detail="over the monthly budget: waiting for next month")  # fmt: skip
    if fall_back:
        _fall_back(fall_back, campaigns=campaigns, businesses=businesses, now=now)
    return len(fall_back), sum(len(g) for g in wait.values())


def _fall_back(rows: list[dict], *, campaigns: dict, businesses: dict, now: datetime) -> None:
    detail = "over the monthly budget: sent on a free channel instead"
    Delivery.objects.filter(id__in=[r["id"] for r in rows], status=DeliveryStatus.QUEUED).update(
        status=DeliveryStatus.SKIPPED, updated_at=now, last_error=detail, lease_expires_at=None
    )
    _events([(r["id"], r["business_id"]) for r in rows], DeliveryStatus.SKIPPED, now, detail)
    send_ids = {r["send_id"] for r in rows}
    taken = set(
        Delivery.objects.filter(send_id__in=send_ids, channel__in=FREE_CHANNELS).values_list("send_id", "channel")
    )
    pushable = set(
        PushSubscription.objects.filter(member_id__in={r["member_id"] for r in rows}).values_list(
            "member_id", flat=True
        )
    )
    new: dict[int, Delivery] = {}
    for r in rows:
        if r["send_id"] in new:
            continue
        enabled = businesses[r["business_id"]].enabled_channels()
        chosen = campaigns[r["campaign_id"]].channels or []
        for channel in sorted(FREE_CHANNELS, key=lambda c: c not in chosen):  # the campaign's own first
            if channel not in enabled and channel not in chosen:
                continue
            if channel == "push" and not (r["consent_push"] and r["member_id"] in pushable):
                continue
            if channel == "email" and not (r["consent_email"] and r["email"]):
                continue
            if (r["send_id"], channel) in taken:
                break  # the send already has this free channel: it goes out there anyway
            new[r["send_id"]] = Delivery(
                business_id=r["business_id"], send_id=r["send_id"], campaign_id=r["campaign_id"],
                member_id=r["member_id"], channel=channel, status=DeliveryStatus.SCHEDULED, scheduled_at=now,
                created_at=now, updated_at=now,
            )  # fmt: skip
            break
    if new:
        Delivery.objects.bulk_create(list(new.values()), ignore_conflicts=True)
        ids = list(
            Delivery.objects.filter(send_id__in=list(new), created_at=now, status=DeliveryStatus.SCHEDULED)
            .filter(channel__in=FREE_CHANNELS)
            .values_list("id", "business_id")
        )
        _events(ids, DeliveryStatus.SCHEDULED, now, "fallback: the billable channel is over the monthly budget")
    # No free channel: the inbox alone has it. The send went out there, so it is sent.
    inbox_only = send_ids - set(new) - {s for s, _ in taken}
    if inbox_only:
        CampaignSend.objects.filter(pk__in=inbox_only, outcome=SendOutcome.SCHEDULED).update(outcome=SendOutcome.SENT)
