"""Every page of the admin opens for every role: each registered model's list, change (an existing
object of the team's business) and add page, as the platform superuser, an owner, a manager and
staff, answers 200 where the role may see it and 403 where not — never a 5xx. The models come from
the project's admin site, so a newly registered model is covered (and fails here until the data
below has one of its rows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from django_scopes import scope, scopes_disabled
from knox.models import AuthToken

from campaigns.models import EvaluationFailure, EvaluationRun
from members import services
from members.models import OneTimeCode, WalletReward
from notifications.models import DeliveryEvent, PushSubscription, RecordedMessage, WhatsAppTemplate
from tests.api.conftest import send_make
from tests.conftest import client_for, visit_make
from winback.admin_site import WinbackAdminSite

# What each team role may open (app_label.model_name); every other model is the superuser's only.
TEAM_VIEW = {
    "owner": {
        "members.membership", "members.member", "members.visit", "members.walletreward", "members.onetimecode",
        "campaigns.campaign", "campaigns.campaignsend",
        "campaigns.evaluationrun", "notifications.delivery", "notifications.recordedmessage",
        "notifications.pushsubscription", "notifications.whatsapptemplate",
    },
    "manager": {
        "members.member", "members.visit", "members.walletreward", "members.onetimecode", "campaigns.campaign", "campaigns.campaignsend", "campaigns.evaluationrun",
        "notifications.delivery", "notifications.recordedmessage", "notifications.pushsubscription",
        "notifications.whatsapptemplate",
    },
    "staff": {"members.member", "members.visit", "members.walletreward"},
}  # fmt: skip
# Records nobody adds by hand, the superuser included (django-axes's access logs and attempts).
NEVER_ADDED = {"axes.accessattempt", "axes.accesslog", "axes.accessfailurelog"}
TEAM_ADD = {
    "owner": {"members.member", "members.visit"},
    "manager": {"members.member", "members.visit"},
    "staff": {"members.visit"},
}


def registered() -> list[tuple[type, admin.ModelAdmin]]:
    assert isinstance(admin.site, WinbackAdminSite)
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)


@pytest.fixture
def superuser(db):
    user = services.user_get_or_create(email="root@winback.example", password="pw-Secret-123")
    user.is_superuser = user.is_staff = True
    user.save(update_fields=["is_superuser", "is_staff"])
    return user


@pytest.fixture
def admin_data(business, owner, member):
    """One row of every registered model, in the team's business where the model is a tenant's."""
    now = timezone.now()
    visit_make(member, days_ago=3)
    send = send_make(member)
    with scope(business=business.pk):
        delivery = send.deliveries.get()
        DeliveryEvent.objects.create(business=business, delivery=delivery, at=now, status="sent")
        EvaluationRun.objects.create(business=business, local_date=send.local_date, started_at=now)
        RecordedMessage.objects.create(business=business, delivery=delivery, channel="sms", to=member.phone,
                                       body="Hello", provider_id="rec-1", created_at=now)  # fmt: skip
        PushSubscription.objects.create(
            business=business, member=member, endpoint="https://push.example.com/x", p256dh="k", auth="a"
        )
        WalletReward.objects.create(business=business, member=member, kind="free_item", title="A coffee",
                                    code="ABCDEFGH23", status="available", offered_at=now, claimed_at=now)  # fmt: skip
        WhatsAppTemplate.objects.create(business=business, content_sid="HX" + "a" * 32, name="winback_offer",
                                        language="en", body="Hi {{1}}", status="approved", last_synced_at=now)  # fmt: skip
        OneTimeCode.objects.create(business=business, member=member, identifier_digest="i" * 64, ip_digest="p" * 64,
                                   channel="sms", code_digest="c" * 64, created_at=now,
                                   expires_at=now + timedelta(minutes=10))  # fmt: skip
    with scopes_disabled():
        EvaluationFailure.objects.create(business=business, local_date=send.local_date, error="KeyError: 'expiry_days'",
                                         first_failed_at=now, failed_at=now, retry_at=now + timedelta(minutes=5))  # fmt: skip
    AuthToken.objects.create(owner, expiry=timedelta(days=1))
    Group.objects.create(name="Support")
    interval = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.DAYS)
    CrontabSchedule.objects.create(minute="5", hour="0")
    SolarSchedule.objects.create(event="sunrise", latitude="3.1390", longitude="101.6869")
    ClockedSchedule.objects.create(clocked_time=now + timedelta(days=1))
    PeriodicTask.objects.create(name="tick", task="campaigns.tasks.tick", interval=interval)
    tried = {"username": owner.username, "ip_address": "192.0.2.1", "user_agent": "test", "attempt_time": now}
    AccessAttempt.objects.create(**tried, failures_since_start=6)
    AccessLog.objects.create(**tried)
    AccessFailureLog.objects.create(**tried)


def existing(model, business, owner):
    """The row whose change page is opened: the team's business's own where the model has one."""
    with scopes_disabled():
        if model._meta.label_lower == "members.business":
            return business
        if model._meta.label_lower == "auth.user":
            return owner
        rows = model._default_manager.all()
        if any(f.name == "business" for f in model._meta.get_fields()):
            rows = rows.filter(business=business)
        found = rows.order_by("pk").first()
    assert found is not None, f"add a {model._meta.label} row to admin_data so its change page is opened"
    return found


def pages(model, obj) -> dict[str, str]:
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    return {"list": base, "change": f"{base}{obj.pk}/change/", "add": f"{base}add/"}


@pytest.mark.parametrize("role", ["superuser", "owner", "manager", "staff"])
def test_every_admin_page_opens_for_every_role_or_answers_403(role, request, admin_data, business, owner):
    user = request.getfixturevalue(role)
    client = client_for(user)
    client.raise_request_exception = False  # a 500 is collected with the rest, not raised at the first
    assert client.get("/admin/").status_code == 200

    answered = {}
    for model, _ in registered():
        label = model._meta.label_lower
        obj = existing(model, business, owner)
        for page, url in pages(model, obj).items():
            if page == "add" and label in NEVER_ADDED:
                expected = 403
            elif role == "superuser":
                expected = 200
            elif page == "add":
                expected = 200 if label in TEAM_ADD[role] else 403
            else:
                expected = 200 if label in TEAM_VIEW[role] else 403
            answered[(label, page)] = (client.get(url).status_code, expected)

    wrong = {key: got for key, (got, expected) in answered.items() if got != expected}
    assert wrong == {}, {key: f"{got} (expected {answered[key][1]})" for key, got in wrong.items()}


def test_the_admin_app_pages_open_for_the_superuser(superuser, admin_data):
    client = client_for(superuser)

    for app_label in sorted({model._meta.app_label for model, _ in registered()}):
        assert client.get(f"/admin/{app_label}/").status_code == 200, app_label
