"""Reads on members shared by the stamp page, the members pages and the API."""

from __future__ import annotations

from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from .models import Member, MemberStatus, Visit


def member_search_condition(query: str) -> Q | None:
    """A card code, an email, the digits of a phone, or the start of each word of a name."""
    query = (query or "").strip()
    if not query:
        return None
    digits = "".join(ch for ch in query if ch.isdigit())
    condition = Q(card_code__iexact=query) | Q(email__iexact=query)
    if len(digits) >= 4:
        # The last nine digits match a local number typed without its country code.
        condition |= Q(phone__endswith=digits[-9:]) if len(digits) >= 9 else Q(phone__contains=digits)
    name = Q()
    for word in query.split():
        name &= Q(first_name__istartswith=word) | Q(last_name__istartswith=word)
    return condition | name


def member_search(*, query: str, limit: int = 20) -> list[Member]:
    """Active members of the current scope matching ``query`` (the stamp page's one box)."""
    condition = member_search_condition(query)
    if condition is None:
        return []
    members = Member.objects.filter(condition, status=MemberStatus.ACTIVE)
    return list(members.order_by("first_name", "last_name", "pk")[:limit])


LAPSED_FILTERS = {"14": 14, "30": 30, "60": 60, "90": 90}


def member_list(*, query: str = "", status: str = "", lapsed: str = "", reach: str = "") -> QuerySet[Member]:
    members = Member.objects.all()
    condition = member_search_condition(query)
    if condition is not None:
        members = members.filter(condition)
    members = members.filter(status=status) if status in MemberStatus.values else members
    if lapsed == "never":
        members = members.filter(last_purchase_at__isnull=True)
    elif lapsed == "active":
        members = members.filter(last_purchase_at__gte=timezone.now() - timedelta(days=14))
    elif lapsed in LAPSED_FILTERS:
        members = members.filter(last_purchase_at__lt=timezone.now() - timedelta(days=LAPSED_FILTERS[lapsed]))
    if reach == "email":
        members = members.exclude(email="")
    elif reach == "phone":
        members = members.exclude(phone="")
    elif reach in ("sms", "whatsapp", "push"):
        members = members.filter(**{f"consent_{reach}": True})
    return members.order_by("-last_purchase_at", "-pk")


def member_recent_visits(*, member: Member, limit: int = 10) -> list[Visit]:
    return list(
        Visit.objects.filter(member=member).select_related("recorded_by").order_by("-occurred_at", "-pk")[:limit]
    )


def member_visits(*, member: Member):
    return Visit.objects.filter(member=member).select_related("recorded_by").order_by("-occurred_at", "-pk")


def member_consents(*, member: Member) -> list[dict]:
    """Each channel's current consent with when and how it last changed (one query)."""
    from .models import CHANNELS, ConsentEvent

    latest: dict[str, ConsentEvent] = {}
    for event in ConsentEvent.objects.filter(member=member).order_by("-occurred_at", "-pk"):
        latest.setdefault(event.channel, event)
    return [{"channel": c, "granted": member.has_consent(c), "event": latest.get(c)} for c in CHANNELS]


def users_locked_out(*, usernames: list[str], now) -> set[str]:
    """Which of these accounts django-axes refuses now: their failed tries within the cool-off
    add up to the failure limit (one query for the whole team page)."""
    rows = (
        AccessAttempt.objects.filter(username__in=usernames, attempt_time__gte=now - settings.AXES_COOLOFF_TIME)
        .values("username")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
    )
    return {row["username"] for row in rows}
