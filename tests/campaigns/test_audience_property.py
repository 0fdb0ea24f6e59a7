"""The audience function equals what the night writes, for all inputs (hypothesis)."""

from datetime import date, timedelta
from decimal import Decimal

from django_scopes import scope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns import engine
from campaigns.models import Campaign
from members.models import Member
from tests.campaigns.helpers import at_local, night, sends
from tests.conftest import ALL_CHANNELS, business_make

D = date(2026, 5, 15)

member_st = st.fixed_dictionaries(
    {
        "days": st.one_of(st.none(), st.integers(min_value=0, max_value=120)),
        "hour": st.integers(min_value=0, max_value=23),
        "purchases": st.integers(min_value=0, max_value=8),
        "spend": st.integers(min_value=0, max_value=300),
        "points": st.integers(min_value=0, max_value=100),
        "sms": st.booleans(),
        "email": st.booleans(),
        "has_email": st.booleans(),
        "has_phone": st.booleans(),
        "joined_days": st.integers(min_value=0, max_value=900),
        "erased": st.booleans(),
    }
)
conditions_st = st.fixed_dictionaries(
    {},
    optional={
        "min_visits": st.integers(0, 6),
        "max_visits": st.integers(3, 9),
        "min_spend": st.integers(0, 200).map(str),
        "min_points": st.integers(0, 80),
        "has_email": st.just(True),
        "has_phone": st.just(True),
        "max_days_away": st.integers(10, 100),
        "joined_after": st.integers(100, 800).map(lambda d: (D - timedelta(days=d)).isoformat()),
    },
).filter(lambda c: c.get("min_visits", 0) <= c.get("max_visits", 99))
campaign_st = st.fixed_dictionaries(
    {
        "inactivity_days": st.integers(1, 60),
        "max_sends": st.integers(1, 3),
        "channels": st.lists(st.sampled_from(["sms", "email"]), min_size=1, max_size=2, unique=True),
        "conditions": conditions_st,
        "control_share": st.integers(0, 20),
        "zone": st.sampled_from(["Asia/Kuala_Lumpur", "America/New_York", "America/Santiago", "Pacific/Auckland"]),
        "earlier_night": st.one_of(st.none(), st.integers(1, 70)),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.lists(member_st, min_size=0, max_size=25), spec=campaign_st)
def test_the_audience_count_equals_the_sends_the_night_creates(db, members, spec):
    business = business_make(timezone=spec["zone"], channel_settings=ALL_CHANNELS, frequency_cap_days=0)
    with scope(business=business.pk):
        Member.objects.bulk_create(
            Member(
                business=business,
                first_name=f"M{i}",
                card_code=f"H{i:05d}",
                phone="+60123456789" if m["has_phone"] else "",
                email=f"m{i}@example.com" if m["has_email"] else "",
                consent_sms=m["sms"],
                consent_email=m["email"],
                joined_on=D - timedelta(days=m["joined_days"]),
                status="erased" if m["erased"] else "active",
                last_purchase_at=None
                if m["days"] is None
                else at_local(business, D - timedelta(days=m["days"]), m["hour"]),
                purchase_count=0 if m["days"] is None else max(m["purchases"], 1),
                total_spent=Decimal(m["spend"]),
                points_balance=m["points"],
            )
            for i, m in enumerate(members)
        )
        campaign = Campaign(
            business=business, name="P", status="active", title="T", body="B", pacing={},
            activated_at=at_local(business, D - timedelta(days=200)),
            **{k: spec[k] for k in ("inactivity_days", "max_sends", "channels", "conditions", "control_share")},
        )  # fmt: skip
        campaign.full_clean(exclude=["business", "created_by"])
        campaign.save()
    if spec["earlier_night"]:
        night(business, D - timedelta(days=spec["earlier_night"]))

    with scope(business=business.pk):
        audience = engine.campaign_audience(campaign, local_date=D, limit=100)
    result = night(business, D)

    written = sends(business, local_date=D)
    stats = result.stats[campaign.pk]
    messaged = {s.member_id for s in written if s.outcome == "scheduled"}
    # The control group is not counted as recipients: the funnel holds it out, as the night does.
    assert audience.count == len(messaged) == stats["sends"]
    assert audience.funnel.stages.get("control", 0) == stats["control"]
    assert {m.pk for m in audience.members} == messaged
    assert sum(audience.away.values()) == audience.count
    assert sum(audience.funnel.stages.values()) == audience.funnel.lapsed
