"""Demo data: a café with two years of realistic, irregular visit history, and eight weeks of
win-back campaigns that really ran.

The campaigns' history is not written as result rows: the real nights
(``campaigns.engine.business_evaluate``) and the real dispatcher run over each simulated date with
that date's ``now``, and the members' returns are purchases recorded through ``visit_record`` as
they happen, a messaged member more likely to come back than a held-out one. So the dashboard and
the campaign pages show what the results code makes of a real history, lift and interval included.
"""

from __future__ import annotations

import contextlib
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from winback.tenancy import business_scope

from .models import Business, ConsentEvent, ConsentSource, Member, Membership, Role, Visit, VisitKind, VisitSource
from .services import members_recompute_totals, user_get_or_create, visit_record

FIRST = [
    "Aisha",
    "Wei",
    "Farah",
    "Daniel",
    "Mei",
    "Arjun",
    "Siti",
    "Lucas",
    "Nur",
    "Hana",
    "Ravi",
    "Emma",
    "Jun",
    "Chloe",
    "Omar",
    "Li",
    "Sofia",
    "Adam",
    "Priya",
    "Ken",
]
LAST = [
    "Tan",
    "Lim",
    "Wong",
    "Rahman",
    "Kumar",
    "Lee",
    "Ng",
    "Ismail",
    "Chen",
    "Abdullah",
    "Smith",
    "Ong",
    "Goh",
    "Teo",
    "Yusof",
    "Garcia",
    "Silva",
    "Brown",
    "Ho",
]


@dataclass
class DemoResult:
    created: bool
    business: Business
    members: int
    visits: int


def _profile(rng: random.Random) -> tuple[str, int | None]:
    """(kind, days since last purchase) for one member."""
    roll = rng.random()
    if roll < 0.35:
        return "regular", rng.randint(0, 9)
    if roll < 0.50:
        # Some cross the 14-day campaign's threshold tonight, so its send can be watched going out.
        return "lapsed", rng.choice((14, 14, 14, *range(14, 30)))
    if roll < 0.62:
        return "lapsed", rng.randint(30, 59)
    if roll < 0.72:
        return "lapsed", rng.randint(60, 89)
    if roll < 0.86:
        return "lapsed", rng.randint(90, 600)
    if roll < 0.93:
        return "new", rng.randint(0, 20)
    return "never", None


def _demo_phone(rng: random.Random, *, business: Business, index: int) -> str:
    """A mobile of the business's country: sign-in codes are texted only there."""
    malaysian = f"+6012{rng.randint(2000000, 9999999)}"  # drawn either way: the rest of the data stays the same
    return f"+4474001{index:05d}" if business.country == "GB" else malaysian


def _member_history(rng: random.Random, *, business: Business, index: int, now: datetime):
    kind, last_days = _profile(rng)
    start = now - timedelta(days=730)
    joined_days = rng.randint(25, 730) if kind != "new" else rng.randint(last_days or 0, 45)
    if last_days is not None:
        joined_days = max(joined_days, last_days + 1)
    joined = now - timedelta(days=joined_days)
    member = Member(
        business=business,
        first_name=rng.choice(FIRST),
        last_name=rng.choice(LAST),
        phone=_demo_phone(rng, business=business, index=index),
        email=f"member{index:04d}@example.com" if rng.random() < 0.8 else "",
        card_code=f"DEMO{index:04d}",
        joined_on=timezone.localdate(max(joined, start), business.tzinfo),
        birthday=(now - timedelta(days=rng.randint(18 * 365, 70 * 365))).date() if rng.random() < 0.6 else None,
        consent_push=rng.random() < 0.5,
        consent_sms=rng.random() < 0.6,
        consent_whatsapp=rng.random() < 0.5,
        consent_email=rng.random() < 0.7,
    )
    visits: list[Visit] = []
    if last_days is None:
        if rng.random() < 0.5:
            visits.append(_visit(business, VisitKind.BALANCE_CHECK, joined + timedelta(hours=rng.randint(1, 200))))
        return member, visits
    gap = rng.uniform(3, 9) if kind == "regular" else rng.uniform(6, 25)
    # Days are the business's: "14 days ago" is 14 local dates before today there, and a visit is
    # at café hours there, whatever the time zone of the machine that makes the demo.
    tz = business.tzinfo
    local_now = now.astimezone(tz)
    last = local_now - timedelta(days=last_days)  # its hour is drawn below, as every visit's
    moment = joined + timedelta(hours=rng.randint(1, 48))
    moments = []
    while moment < last:
        moments.append(moment)
        moment += timedelta(days=max(0.5, rng.gauss(gap, gap / 2.5)))
    moments.append(last)
    stamps = 0
    for at in moments:
        at = at.astimezone(tz).replace(hour=rng.randint(8, 19), minute=rng.randint(0, 59))
        if at > now:
            at = now - timedelta(minutes=rng.randint(5, 60))
        amount = Decimal(rng.randint(500, 4500)) / 100
        visits.append(_visit(business, VisitKind.PURCHASE, at, stamps=1, points=int(amount), amount=amount))
        stamps += 1
        if stamps >= business.stamps_per_card and rng.random() < 0.8:
            visits.append(
                _visit(business, VisitKind.REDEMPTION, at + timedelta(minutes=1), stamps=-business.stamps_per_card)
            )
            stamps -= business.stamps_per_card
        if rng.random() < 0.03:
            visits.append(_visit(business, VisitKind.BALANCE_CHECK, at + timedelta(days=2)))
    return member, [v for v in visits if v.occurred_at <= now]


def _visit(business, kind, at, *, stamps=0, points=0, amount=None) -> Visit:
    return Visit(
        business=business,
        kind=kind,
        stamps_delta=stamps,
        points_delta=points,
        amount=amount,
        occurred_at=at,
        source=VisitSource.SYSTEM,
    )


DEMO_BUSINESSES = [
    {"slug": "demo", "name": "Demo Café", "timezone": "Asia/Kuala_Lumpur", "currency": "MYR", "country": "MY",
     "program_type": "both", "members": 500, "seed": 2026, "watch": True},
    {"slug": "demo-salon", "name": "Demo Salon", "timezone": "Europe/London", "currency": "GBP", "country": "GB",
     "program_type": "stamps", "members": 60, "seed": 7, "watch": False},
]  # fmt: skip
ALL_CHANNELS = {"push": {"enabled": True}, "email": {"enabled": True}, "sms": {"enabled": True},
                "whatsapp": {"enabled": True, "template": "winback_offer"}}  # fmt: skip


def demo_seed(*, password: str, now: datetime | None = None) -> list[DemoResult]:
    """Create the demo businesses and their users once; a second run changes nothing."""
    from campaigns.engine import local_day_start

    now = now or timezone.now()
    owner = user_get_or_create(email="owner@demo.example", password=password, first_name="Farah")
    staff = user_get_or_create(email="staff@demo.example", password=password, first_name="Wei")
    results = []
    for spec in DEMO_BUSINESSES:
        spec = dict(spec)
        count, seed, slug, watch = spec.pop("members"), spec.pop("seed"), spec.pop("slug"), spec.pop("watch")
        business = Business.objects.filter(slug=slug).first()
        if business is not None:
            results.append(DemoResult(False, business, 0, 0))
            continue
        with transaction.atomic():
            business = Business.objects.create(slug=slug, channel_settings=ALL_CHANNELS, **spec)
            with business_scope(business):
                Membership.objects.create(business=business, user=owner, role=Role.OWNER)
                Membership.objects.create(business=business, user=staff, role=Role.STAFF)
                rng = random.Random(seed)
                histories = [_member_history(rng, business=business, index=i + 1, now=now) for i in range(count)]
                members = Member.objects.bulk_create([m for m, _ in histories], batch_size=1000)
                visits = []
                for member, member_visits in zip(members, (v for _, v in histories), strict=True):
                    for visit in member_visits:
                        visit.member = member
                    visits.extend(member_visits)
                # The history before the campaigns' first night is written at once; what happens
                # after it, night by night with the campaigns (``_story_run``).
                tz = business.tzinfo
                first_night = timezone.localdate(now, tz) - timedelta(days=CAMPAIGN_NIGHTS)
                later: dict[date, list[Visit]] = defaultdict(list)
                for visit in visits:
                    if visit.occurred_at >= local_day_start(first_night, tz):
                        later[visit.occurred_at.astimezone(tz).date()].append(visit)
                Visit.objects.bulk_create(
                    [v for v in visits if v.occurred_at < local_day_start(first_night, tz)], batch_size=5000
                )
                ConsentEvent.objects.bulk_create(
                    ConsentEvent(
                        business=business,
                        member=m,
                        channel=c,
                        granted=True,
                        source=ConsentSource.SIGNUP,
                        occurred_at=now,
                    )  # fmt: skip
                    for m in members
                    for c in ("push", "sms", "whatsapp", "email")
                    if getattr(m, f"consent_{c}")
                )
                members_recompute_totals(business=business)
                _demo_campaigns(business=business, owner=owner, now=now, first_night=first_night, watch=watch)
                _story_run(business=business, members=members, staff=staff, first_night=first_night, now=now,
                           later=later, rng=rng)  # fmt: skip
                visit_total = Visit.objects.count()
        results.append(DemoResult(True, business, len(members), visit_total))
    return results


# --- the story: eight weeks of real nights --------------------------------------------------------

# The two win-back campaigns have run this many nights before today's.
CAMPAIGN_NIGHTS = 56
# Occasional visitors come back by themselves (their own rhythm, in the history): that is the
# control group's rate. On top of it, within the 14-day attribution window, a messaged member
# comes back with this chance, a held-out one with a small one (a friend's visit, a poster): the
# lift is real but modest, as a café's is, and its interval is what the results code makes of it.
RETURN_MESSAGED = 0.35
RETURN_CONTROL = 0.04
# A member who came back buys again within two weeks with this chance.
RETURN_AGAIN = 0.4
OPEN_MESSAGED = 0.45
# Tonight's messages of the 14-day campaign go out this long after seed_demo (email one every
# 20 s): the owner watches them leave on the campaign page without waiting for tomorrow.
WATCH_DELAY = timedelta(minutes=3)


def _demo_campaigns(*, business: Business, owner, now: datetime, first_night: date, watch: bool) -> None:
    """Two active win-back campaigns (14 and 30 days) with control groups, activated the afternoon
    before the first night, and a draft. With ``watch``, the 14-day one sends a few minutes from now."""
    from campaigns.engine import local_day_start
    from campaigns.models import Campaign

    tz = business.tzinfo
    common = {"business": business, "created_by": owner, "status": "active",
              "activated_at": local_day_start(first_night, tz) - timedelta(hours=8)}  # fmt: skip
    # Email and push have no quiet hours, so at any hour of the day the demo is made, tonight's
    # email messages of this campaign go out a few minutes later (SMS and WhatsApp wait for 08:00).
    watch_at = (now + WATCH_DELAY).astimezone(tz).time().replace(second=0, microsecond=0)
    Campaign.objects.create(
        name="We miss you (14 days)",
        description="In the demo this campaign sends a few minutes after the demo was created, so that "
        "tonight's messages can be watched going out."
        if watch
        else "",
        inactivity_days=14,
        max_sends=2,
        title="We miss you, {first_name}!",
        body="It has been {days_away} days. Come back to {business} this week for {reward}.",
        reward={"kind": "bonus_stamps", "count": 2, "expiry_days": 30},
        escalation=[
            {
                "title": "Still thinking of you",
                "body": "{reward} at {business}, just for you.",
                "reward": {"kind": "discount", "percent": 20, "expiry_days": 14},
            }
        ],  # fmt: skip
        channels=["push", "email", "sms", "whatsapp"],
        conditions={"max_days_away": 120},
        control_share=20,
        send_at=watch_at if watch else time(9, 0),
        pacing={"email": {"interval_seconds": 20}, "whatsapp": {"interval_seconds": 60, "daily_cap": 480}},
        **common,
    )
    Campaign.objects.create(
        name="Long time no see (30 days)",
        inactivity_days=30,
        title="Your table is waiting, {first_name}",
        body="Show this message at {business} for {reward}.",
        reward={"kind": "free_item", "item": "coffee", "expiry_days": 30},
        ab_enabled=True,
        variant_b_title="A free coffee for you, {first_name}",
        variant_b_body="{business} misses you: {reward} this week.",
        channels=["push", "whatsapp", "sms", "email"],
        conditions={"max_days_away": 365},
        control_share=20,
        **common,
    )
    Campaign.objects.create(business=business, created_by=owner, name="Birthday-season draft", inactivity_days=60,
                            title="", body="", channels=["email"])  # fmt: skip


def _story_run(*, business: Business, members: list[Member], staff, first_night: date, now: datetime,
               later: dict[date, list[Visit]], rng: random.Random) -> None:  # fmt: skip
    """Each date from ``first_night`` to today as it happened: the night at local midnight, the
    dispatcher in the evening (today: now), then the day's purchases — the members' own (written
    as the history before) and those of members who came back (``visit_record``), a messaged
    member more often than a held-out one — and the messages opened (``inbox_open``)."""
    from campaigns import engine
    from campaigns.models import NOT_COUNTED, CampaignSend, SendOutcome
    from notifications import dispatcher
    from notifications.inbox import inbox_open

    tz = business.tzinfo
    by_id = {m.pk: m for m in members}
    returns: dict[date, list[int]] = defaultdict(list)
    opens: dict[date, list[int]] = defaultdict(list)
    today = timezone.localdate(now, tz)
    day = first_night
    while day <= today:
        engine.business_evaluate(business=business, local_date=day, now=engine.local_day_start(day, tz))
        # The beat's dispatcher, twice a day here: in the evening, and before midnight for what a
        # late send-at time scheduled after it (email and push; SMS and WhatsApp stop at 21:00).
        # The history's messages are recorded, never sent: with Twilio or SMTP configured (seed_demo
        # on a real deployment) the demo's made-up numbers and addresses must get nothing.
        for at in (time(20, 30), time(23, 50)):
            moment = min(engine.local_moment(day, at, tz), now)
            dispatcher.dispatch_due(
                now=moment,
                enqueue=lambda _b, ids, m=moment: dispatcher.deliveries_send(
                    delivery_ids=ids, now_fn=lambda: m, backends=_recorded
                ),
            )
        tonight = (
            CampaignSend.objects.filter(local_date=day).exclude(outcome__in=NOT_COUNTED).order_by("pk")
            .values_list("pk", "member_id", "outcome")
        )  # fmt: skip
        for send_id, member_id, outcome in tonight:
            messaged = outcome == SendOutcome.SENT
            if rng.random() < (RETURN_MESSAGED if messaged else RETURN_CONTROL):
                returns[day + timedelta(days=rng.randint(1, 13))].append(member_id)
            if messaged and rng.random() < OPEN_MESSAGED:
                opens[day + timedelta(days=rng.randint(0, 2))].append(send_id)
        own = later.pop(day, [])
        if own:
            Visit.objects.bulk_create(own)
            members_recompute_totals(business=business, member_ids=sorted({v.member_id for v in own}))
        for member_id in returns.pop(day, []):
            at = engine.local_moment(day, time(rng.randint(10, 19), rng.randint(0, 59)), tz)
            if at > now:
                continue
            amount = Decimal(rng.randint(600, 4800)) / 100
            visit_record(member=by_id[member_id], kind=VisitKind.PURCHASE, stamps=1, points=int(amount),
                         amount=amount, occurred_at=at, recorded_by=staff, source=VisitSource.STAMP_PAGE)  # fmt: skip
            if rng.random() < RETURN_AGAIN:
                returns[day + timedelta(days=rng.randint(4, 13))].append(member_id)
        opened = opens.pop(day, [])
        for send in CampaignSend.objects.in_bulk(opened).values() if opened else ():
            # Not visible yet (its delivery deferred past that evening): not opened then.
            with contextlib.suppress(CampaignSend.DoesNotExist):
                inbox_open(send=send, at=min(engine.local_moment(day, time(21, rng.randint(0, 59)), tz), now))
        day += timedelta(days=1)


def _recorded(channel: str, *, business=None):
    from notifications.channels import RecordingBackend

    return RecordingBackend(channel)
