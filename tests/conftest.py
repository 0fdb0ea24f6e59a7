"""Shared fixtures: a business with its owner, manager and staff, an outsider business, makers."""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from members import services
from members.models import Business, Member, Membership, Role, VisitSource

_counter = itertools.count(1)


def on_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    lines = [
        f"winback database: {db['ENGINE'].rsplit('.', 1)[-1]} ({db.get('HOST') or db['NAME']})",
        f"winback broker: {settings.CELERY_BROKER_URL.split('@')[-1]}",
    ]
    if not on_postgresql():
        lines.append("PostgreSQL-only tests (concurrency, SKIP LOCKED) are deselected: set DATABASE_URL to run them")
    return lines


def pytest_configure(config):
    """Under pytest-xdist every test process shares the broker: each gets a queue of its own, so
    one process's real worker never takes (or purges) the tasks another process's test sent."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        from winback.celery import app

        app.conf.task_default_queue = f"winback-tests-{worker}"


def pytest_collection_modifyitems(config, items):
    """Concurrency tests need PostgreSQL's row locks; on the SQLite default they are left out."""
    if on_postgresql():
        return
    kept = [item for item in items if item.get_closest_marker("postgres") is None]
    deselected = [item for item in items if item.get_closest_marker("postgres") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_demo_push_keys(settings):
    """The keys ``make run`` keeps in var/vapid.env are the demo's, not the tests': without a test's
    own (the ``push`` fixture), push is recorded, whether or not the demo ran in this checkout."""
    settings.VAPID_PRIVATE_KEY = settings.VAPID_PUBLIC_KEY = ""


@pytest.fixture(autouse=True)
def _own_cache(settings, request):
    """A fresh in-process cache per test: throttle counters never leak between tests or workers."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": request.node.nodeid}}  # fmt: skip


@pytest.fixture(autouse=True)
def _sign_in_codes_sent_in_process(monkeypatch):
    """No worker runs beside the tests: a sign-in code's task, enqueued on commit, runs at once in
    this process through Celery's eager ``apply`` (its retries too, without the countdowns)."""
    from members.tasks import code_send_task

    monkeypatch.setattr(code_send_task, "delay", lambda **kwargs: code_send_task.apply(kwargs=kwargs))


@pytest.fixture(autouse=True)
def _recording_outbox(monkeypatch):
    """What the recording backend sent in this test, in memory and in clear, like Django's
    ``mail.outbox``: the only place a test reads a sign-in code (the database keeps it masked)."""
    from notifications.channels import recording

    monkeypatch.setattr(recording, "outbox", [])


def sign_in_code_sent(to: str) -> str:
    """The newest sign-in code the recording backend sent to this phone or email."""
    from notifications.channels import recording

    codes = [m.secret for m in recording.outbox if m.to == to and m.secret]
    assert codes, f"no sign-in code was sent to {to}"
    return codes[-1]


TWILIO_TOKEN = "test-auth-token-0123456789abcdef"


@pytest.fixture
def twilio(settings):
    """A fake Twilio Messages API on 127.0.0.1 for the real client, with credentials to call it."""
    from notifications.channels.twilio import twilio_client
    from tests.fakes import FakeTwilio

    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
        settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
        settings.TWILIO_API_BASE = fake.url
        settings.SITE_URL = "https://winback.example"
        twilio_client.cache_clear()  # one client per process: not the previous test's fake
        yield fake
        twilio_client.cache_clear()


TWILIO_ACCOUNT = "AC" + "0" * 32
TWILIO_SUBACCOUNT, TWILIO_SUBACCOUNT_TOKEN = "AC" + "5" * 32, "subaccount-token-5555"


@pytest.fixture
def content_api(settings):
    """A fake Twilio Content API on 127.0.0.1 (its ``accounts``: SID → templates), the platform's
    Twilio credentials and one subaccount's."""
    from notifications.channels.twilio import twilio_client
    from tests.fakes import FakeContentApi

    with FakeContentApi() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = TWILIO_ACCOUNT, TWILIO_TOKEN
        settings.TWILIO_SUBACCOUNTS = {TWILIO_SUBACCOUNT: TWILIO_SUBACCOUNT_TOKEN}
        settings.TWILIO_API_BASE = fake.url
        twilio_client.cache_clear()
        yield fake
        twilio_client.cache_clear()


def business_make(**fields) -> Business:
    n = next(_counter)
    defaults = {
        "name": f"Business {n}",
        "slug": f"business-{n}",
        "timezone": "Asia/Kuala_Lumpur",
        "country": "MY",
        "currency": "MYR",
        "program_type": "both",
        "stamps_per_card": 10,
    }
    defaults.update(fields)
    return Business.objects.create(**defaults)


def user_make(role: str | None, business: Business | None, email: str | None = None):
    n = next(_counter)
    user = services.user_get_or_create(email=email or f"user{n}@example.com", password="pw-Secret-123")
    if business is not None and role is not None:
        with scopes_disabled():
            Membership.objects.create(business=business, user=user, role=role)
    return user


@pytest.fixture
def business(db) -> Business:
    return business_make(name="Kopi Corner", slug="kopi")


@pytest.fixture
def other_business(db) -> Business:
    return business_make(name="Other Shop", slug="other", timezone="Europe/London", country="GB")


@pytest.fixture
def owner(business):
    return user_make(Role.OWNER, business, "owner@kopi.example")


@pytest.fixture
def manager(business):
    return user_make(Role.MANAGER, business, "manager@kopi.example")


@pytest.fixture
def staff(business):
    return user_make(Role.STAFF, business, "staff@kopi.example")


@pytest.fixture
def other_owner(other_business):
    return user_make(Role.OWNER, other_business, "owner@other.example")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user, backend="members.auth.EmailBackend")
    return client


@pytest.fixture
def owner_client(owner) -> Client:
    return client_for(owner)


@pytest.fixture
def staff_client(staff) -> Client:
    return client_for(staff)


@pytest.fixture
def manager_client(manager) -> Client:
    return client_for(manager)


def member_make(business: Business, **fields) -> Member:
    n = next(_counter)
    defaults = {"first_name": f"Member{n}", "last_name": "Test", "card_code": f"C{n:07d}"}
    defaults.update(fields)
    with scope(business=business.pk):
        return services.member_create(business=business, **defaults)


def visit_make(member: Member, *, kind="purchase", days_ago: float = 0, at: datetime | None = None, **fields):
    at = at or timezone.now() - timedelta(days=days_ago)
    fields.setdefault("source", VisitSource.ADMIN)
    if kind == "purchase":
        fields.setdefault("stamps", 1)
        fields.setdefault("amount", Decimal("10.00"))
    with scope(business=member.business_id):
        return services.visit_record(member=member, kind=kind, occurred_at=at, **fields)


@pytest.fixture
def member(business) -> Member:
    return member_make(business, first_name="Wei", last_name="Lin", phone="+60123456789", email="wei@example.com")


@pytest.fixture
def other_member(other_business) -> Member:
    return member_make(other_business, first_name="Outsider", last_name="Person", phone="+447400123456")


ALL_CHANNELS = {c: {"enabled": True} for c in ("push", "sms", "whatsapp", "email")}


def campaign_make(business: Business, *, activated_at: datetime | None = None, status: str = "active", **fields):
    """An active win-back campaign activated well in the past (or as given)."""
    from campaigns.models import Campaign

    if not business.channel_settings:
        business.channel_settings = ALL_CHANNELS
        business.save(update_fields=["channel_settings"])
    defaults = {
        "name": f"Win-back {next(_counter)}",
        "inactivity_days": 14,
        "title": "We miss you, {first_name}!",
        "body": "Come back to {business} for {reward}. It has been {days_away} days.",
        "channels": ["sms"],
        "pacing": {},
    }
    defaults.update(fields)
    with scope(business=business.pk):
        campaign = Campaign(business=business, status=status, **defaults)
        campaign.full_clean(exclude=["business", "created_by"])
        campaign.activated_at = activated_at or (timezone.now() - timedelta(days=400) if status == "active" else None)
        campaign.save()
    return campaign
