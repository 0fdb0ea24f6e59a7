"""Demo data: a café with two years of realistic, irregular visit history."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from winback.tenancy import business_scope

from .models import Business, ConsentEvent, ConsentSource, Member, Membership, Role, Visit, VisitKind, VisitSource
from .services import members_recompute_totals, user_get_or_create

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
        return "lapsed", rng.randint(14, 29)
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
    last = now - timedelta(days=last_days, hours=rng.randint(0, 10))
    moment = joined + timedelta(hours=rng.randint(1, 48))
    moments = []
    while moment < last:
        moments.append(moment)
        moment += timedelta(days=max(0.5, rng.gauss(gap, gap / 2.5)))
    moments.append(last)
    stamps = 0
    for at in moments:
        at = at.replace(hour=rng.randint(8, 19), minute=rng.randint(0, 59))
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
     "program_type": "both", "members": 500, "seed": 2026},
    {"slug": "demo-salon", "name": "Demo Salon", "timezone": "Europe/London", "currency": "GBP", "country": "GB",
     "program_type": "stamps", "members": 60, "seed": 7},
]  # fmt: skip
ALL_CHANNELS = {"push": {"enabled": True}, "email": {"enabled": True}, "sms": {"enabled": True},
                "whatsapp": {"enabled": True, "template": "winback_offer"}}  # fmt: skip


def demo_seed(*, password: str, now: datetime | None = None) -> list[DemoResult]:
    """Create the demo businesses and their users once; a second run changes nothing."""
    now = now or timezone.now()
    owner = user_get_or_create(email="owner@demo.example", password=password, first_name="Farah")
    staff = user_get_or_create(email="staff@demo.example", password=password, first_name="Wei")
    results = []
    for spec in DEMO_BUSINESSES:
        spec = dict(spec)
        count, seed, slug = spec.pop("members"), spec.pop("seed"), spec.pop("slug")
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
                Visit.objects.bulk_create(visits, batch_size=5000)
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
                _demo_campaigns(business=business, owner=owner, now=now)
        results.append(DemoResult(True, business, len(members), len(visits)))
    return results


def _demo_campaigns(*, business: Business, owner, now: datetime) -> None:
    """Two active win-back campaigns (14 and 30 days) with three past nights of history, and a draft."""
    from campaigns import engine
    from campaigns.models import Campaign
    from notifications import dispatcher

    common = {"business": business, "created_by": owner, "channels": ["sms", "email", "whatsapp"],
              "activated_at": now - timedelta(days=60), "status": "active"}  # fmt: skip
    Campaign.objects.create(
        name="We miss you (14 days)",
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
        control_share=10,
        **common,
    )
    Campaign.objects.create(business=business, created_by=owner, name="Birthday-season draft", inactivity_days=60,
                            title="", body="", channels=["email"])  # fmt: skip
    today = timezone.localdate(now, business.tzinfo)
    for back in (3, 2, 1):
        day = today - timedelta(days=back)
        engine.business_evaluate(business=business, local_date=day, now=engine.local_day_start(day, business.tzinfo))
    dispatcher.dispatch_due(
        now=now, enqueue=lambda _business_id, ids: dispatcher.deliveries_send(delivery_ids=ids, now_fn=lambda: now)
    )
