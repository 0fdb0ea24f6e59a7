import io

from django.core.management import call_command
from django.db.models import Count, Q, Sum
from django.test import Client
from django_scopes import scopes_disabled

from members.models import Business, Member, Visit


def counts():
    with scopes_disabled():
        return (Business.objects.count(), Member.objects.count(), Visit.objects.count())


def test_seed_demo_creates_realistic_data_and_a_second_run_changes_nothing(db):
    call_command("seed_demo", stdout=io.StringIO())
    first = counts()

    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    assert counts() == first
    assert "already exists" in out.getvalue()
    with scopes_disabled():
        cafe = Business.objects.get(slug="demo")
        members = Member.objects.filter(business=cafe)
        assert 450 <= members.count() <= 550
        from datetime import timedelta

        from django.utils import timezone

        now = timezone.now()

        def lapsed(lo, hi):
            return members.filter(
                last_purchase_at__lte=now - timedelta(days=lo), last_purchase_at__gt=now - timedelta(days=hi)
            ).count()

        assert members.filter(last_purchase_at__gte=now - timedelta(days=10)).count() > 100  # regulars
        for lo, hi in [(14, 30), (30, 60), (60, 90), (90, 2000)]:
            assert lapsed(lo, hi) > 20, (lo, hi)
        assert members.filter(last_purchase_at__isnull=True).count() > 10
        assert Visit.objects.filter(business=cafe, occurred_at__lt=now - timedelta(days=600)).exists()
        # balances equal the ledger for every member
        ledger = members.annotate(
            s=Sum("visits__stamps_delta", default=0), p=Count("visits", filter=Q(visits__kind="purchase"))
        )
        assert all(m.s == m.stamps_balance and m.p == m.purchase_count for m in ledger)


def test_the_demo_logins_work(db, settings):
    call_command("seed_demo", stdout=io.StringIO())
    client = Client()

    response = client.post("/accounts/login/", {"username": "Staff@demo.example", "password": settings.DEMO_PASSWORD})

    assert response.status_code == 302
    assert client.get("/").url == "/stamp/"
    owner = Client()
    owner.post("/accounts/login/", {"username": "owner@demo.example", "password": settings.DEMO_PASSWORD})
    assert owner.get("/").url == "/dashboard/"


def test_every_demo_member_can_be_texted_a_sign_in_code_by_their_business(db):
    from members.apiauth import sms_destination_check

    call_command("seed_demo", stdout=io.StringIO())

    with scopes_disabled():
        members = list(Member.objects.select_related("business").exclude(phone=""))
    for member in members:  # raises for a phone in another country or not a mobile
        sms_destination_check(business=member.business, phone=member.phone)
    assert {m.business.slug for m in members} == {"demo", "demo-salon"}
