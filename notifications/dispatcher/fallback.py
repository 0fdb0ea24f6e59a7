"""Channel fallback (SPEC §5, issue 15): a send of a first-reachable campaign whose delivery
failed for good moves to the next channel of the campaign's order that the member is reachable on
with consent now and that this send has not tried, paced like any delivery, once per channel."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import connection, transaction

from campaigns.models import Campaign, CampaignStatus, ChannelMode
from campaigns.rules import reachable_sql
from members.models import CHANNELS, Member, MemberStatus
from winback.db import rows_insert

from ..models import CHANNEL_CHOICES, DeliveryEvent, DeliveryStatus
from .outbox import _DELIVERY, LEASE
from .settle import _deliveries_pace

LABELS = dict(CHANNEL_CHOICES)


def deliveries_fall_back(*, failed: list[dict], campaigns: dict[int, Campaign], now: datetime) -> int:
    """Write the next delivery of each failed delivery's send, where there is one; returns how many.

    ``failed``: the deliveries that failed for good (id, send_id, campaign_id, channel, reason,
    and ``tz``: the member's time zone, else the business's), ``campaigns`` theirs by id. One
    INSERT … SELECT for them all picks each send's next channel (after the failed one in the
    order, reachable now, no delivery of this send on it yet: the unique key on (send, channel)
    holds that too); one more statement paces them (``_deliveries_pace``), one writes their events.
    """
    orders = {
        c.pk: c.channels
        for c in campaigns.values()
        # (a paused campaign sends nothing more: its fallback would only be cancelled)
        if c.status == CampaignStatus.ACTIVE
        and c.channel_mode == ChannelMode.FIRST_REACHABLE
        and len(c.channels or []) > 1
    }
    failed = [r for r in failed if r["channel"] in orders.get(r["campaign_id"], [])[:-1]]
    if not failed:
        return 0
    order_rows = [(cid, channel, pos) for cid, channels in orders.items() for pos, channel in enumerate(channels)]
    order_sql = ", ".join(["(%s, %s, %s)"] * len(order_rows))
    reachable = " ".join(f"WHEN '{ch}' THEN {reachable_sql(ch)}" for ch in CHANNELS)
    ids = [r["id"] for r in failed]
    sql = (
        f"INSERT INTO {_DELIVERY} (business_id, send_id, campaign_id, member_id, channel, status, scheduled_at, "  # noqa: S608
        "attempts, lease_expires_at, claim_token, provider_id, last_error, fallback_from, created_at, updated_at) "
        f"WITH fo (cid, channel, pos) AS (VALUES {order_sql}), "
        "nxt AS (SELECT f.business_id, f.send_id, f.campaign_id, f.member_id, o.channel, f.channel AS from_channel, "
        "ROW_NUMBER() OVER (PARTITION BY f.id ORDER BY o.pos) AS rn "
        f"FROM {_DELIVERY} f JOIN fo cur ON cur.cid = f.campaign_id AND cur.channel = f.channel "
        "JOIN fo o ON o.cid = f.campaign_id AND o.pos > cur.pos "
        f"JOIN {Member._meta.db_table} m ON m.id = f.member_id "
        f"WHERE f.id IN ({', '.join(['%s'] * len(ids))}) AND f.status = %s AND m.status = %s "
        f"AND CASE o.channel {reachable} ELSE 1 = 0 END "
        f"AND NOT EXISTS (SELECT 1 FROM {_DELIVERY} x WHERE x.send_id = f.send_id AND x.channel = o.channel)) "
        "SELECT business_id, send_id, campaign_id, member_id, channel, %s, %s, 0, %s, '', '', '', from_channel, %s, %s "
        "FROM nxt WHERE rn = 1 ON CONFLICT DO NOTHING RETURNING id, business_id, campaign_id, send_id, channel"
    )
    at = connection.ops.adapt_datetimefield_value(now)
    lease = connection.ops.adapt_datetimefield_value(now + LEASE)
    params = [v for row in order_rows for v in row] + ids
    params += [DeliveryStatus.FAILED, MemberStatus.ACTIVE, DeliveryStatus.QUEUED, at, lease, at, at]
    by_send = {r["send_id"]: r for r in failed}
    # Written queued (with a lease, so a crash before the pacing below returns them to the outbox)
    # and scheduled in the same transaction.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            written = cursor.fetchall()
        if not written:
            return 0
        groups: dict[tuple[int, str, str], list[dict]] = defaultdict(list)
        for i, business_id, campaign_id, send_id, channel in written:
            groups[(campaign_id, channel, by_send[send_id]["tz"])].append({"id": i, "business_id": business_id})
        _deliveries_pace(groups, campaigns=campaigns, now=now, from_now=True)
        rows_insert(
            DeliveryEvent,
            ("business_id", "delivery_id", "status", "at", "detail"),
            [(business_id, i, DeliveryStatus.SCHEDULED, at, _detail(by_send[send_id], channel))
             for i, business_id, _, send_id, channel in written],
        )  # fmt: skip
    return len(written)


def _detail(failed: dict, channel: str) -> str:
    return f"fell back from {LABELS[failed['channel']]} to {LABELS[channel]}: {failed['reason']}"[:500]


def delivery_fall_back(*, delivery, reason: str, now: datetime) -> int:
    """``deliveries_fall_back`` for one delivery a provider reported failed after it went out
    (a Twilio status callback with its error code, an ESP's hard bounce)."""
    campaign = Campaign.objects.select_related("business").filter(pk=delivery.campaign_id).first()
    if campaign is None or campaign.channel_mode != ChannelMode.FIRST_REACHABLE:
        return 0
    member_tz = Member.objects.filter(pk=delivery.member_id).values_list("timezone", flat=True).first()
    row = {"id": delivery.pk, "send_id": delivery.send_id, "campaign_id": delivery.campaign_id,
           "channel": delivery.channel, "reason": reason, "tz": member_tz or campaign.business.timezone}  # fmt: skip
    return deliveries_fall_back(failed=[row], campaigns={campaign.pk: campaign}, now=now)
