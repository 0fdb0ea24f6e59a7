"""What billable messages cost, and the monthly budget they are reserved against.

SMS is priced per segment and WhatsApp per message, each at the business's price for the
destination's country where it has one (``country_prices``), else its own default. Push, email
and the inbox cost nothing.

The dispatcher reserves a chunk's billable messages in one transaction that locks the business's
``MonthlySpend`` row for the month (``SELECT … FOR UPDATE``): a reservation on another worker or
machine waits for it and then reads what it reserved, so together they never pass the budget.
Without a budget every message is reserved (the spend is still counted, for the dashboard). A
message the provider never accepted gives its reservation back (``spend_release``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate

import phonenumbers
from django.db import connection, transaction
from django.db.models import F

from campaigns.sms import sms_size, sms_text
from members.models import Business

from .models import MonthlySpend

FREE = Decimal(0)


def month_of(*, business: Business, now: datetime) -> date:
    """The first day of ``now``'s month in the business's time zone: the month its spend counts in."""
    return now.astimezone(business.tzinfo).date().replace(day=1)


def next_month_start(*, business: Business, now: datetime) -> datetime:
    """Midnight at the start of the next month, in the business's time zone."""
    first = month_of(business=business, now=now)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(following, time(0), tzinfo=business.tzinfo)


def destination_country(phone: str) -> str:
    """The ISO 3166 country of an E.164 number, or "" when it cannot be read."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or ""
    except phonenumbers.NumberParseException:
        return ""


def unit_price(*, business: Business, channel: str, country: str = "") -> Decimal:
    """The price of one SMS segment or one WhatsApp message to ``country``."""
    override = (business.country_prices or {}).get(country, {}).get(channel)
    if override is not None:
        return Decimal(str(override))
    if channel == "sms":
        return Decimal(business.sms_price)
    if channel == "whatsapp":
        return Decimal(business.whatsapp_price)
    return FREE


def message_cost(*, business: Business, channel: str, to: str, title: str, body: str, url: str) -> Decimal:
    """What sending this message costs: SMS segments × the segment price, one WhatsApp message,
    or nothing on a free channel."""
    if channel not in ("sms", "whatsapp"):
        return FREE
    country = destination_country(to) if business.country_prices else ""
    price = unit_price(business=business, channel=channel, country=country)
    if channel == "whatsapp":
        return price
    return price * sms_size(sms_text(title=title, body=body, url=url)).segments


def spend_reserve(*, business: Business, month: date, costs: list[Decimal], now: datetime) -> int:
    """Reserve the messages of ``costs``, in order, against the month's budget: as many as fit
    (all of them without a budget). Returns how many were reserved — the first ones."""
    if not costs:
        return 0
    totals = list(accumulate(costs))
    if connection.vendor == "postgresql":
        n = _reserve_statement(business=business, month=month, totals=totals, now=now)
        if n is None:  # the month's first reservation: its row, then the same statement
            MonthlySpend.objects.bulk_create(
                [MonthlySpend(business=business, month=month, updated_at=now)], ignore_conflicts=True
            )
            n = _reserve_statement(business=business, month=month, totals=totals, now=now)
        return n or 0
    with transaction.atomic():
        MonthlySpend.objects.bulk_create(
            [MonthlySpend(business=business, month=month, updated_at=now)], ignore_conflicts=True
        )
        # The lock: a concurrent reservation for this business and month waits here, then reads
        # the amount this one reserved.
        spend = MonthlySpend.objects.select_for_update().get(business=business, month=month)
        budget = business.monthly_budget
        n = len(costs) if budget is None else sum(1 for total in totals if spend.amount + total <= budget)
        if n:
            MonthlySpend.objects.filter(pk=spend.pk).update(
                amount=F("amount") + totals[n - 1], messages=F("messages") + n, updated_at=now
            )
    return n


def _reserve_statement(*, business: Business, month: date, totals: list[Decimal], now: datetime) -> int | None:
    """PostgreSQL, one statement: lock the month's row (a concurrent reservation waits, then
    reads the amount the other reserved: READ COMMITTED gives ``FOR UPDATE`` the latest row),
    count the running totals that fit under the budget, add the largest. None: no row yet."""
    table = MonthlySpend._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH cur AS (SELECT id, amount FROM {table} WHERE business_id = %s AND month = %s FOR UPDATE), "  # noqa: S608
            "fit AS (SELECT cur.id, COUNT(t.total) AS n, COALESCE(MAX(t.total), 0) AS total FROM cur "
            "LEFT JOIN unnest(%s::numeric[]) AS t(total) ON %s::numeric IS NULL OR cur.amount + t.total <= %s "
            f"GROUP BY cur.id) UPDATE {table} s SET amount = s.amount + fit.total, messages = s.messages + fit.n, "
            "updated_at = %s FROM fit WHERE s.id = fit.id RETURNING fit.n",
            [business.pk, month, totals, business.monthly_budget, business.monthly_budget, now],
        )  # fmt: skip
        row = cursor.fetchone()
    return None if row is None else row[0]


def spend_release(*, business: Business, month: date, amount: Decimal, messages: int, now: datetime) -> None:
    """Give back what messages the provider never accepted had reserved."""
    if not messages:
        return
    MonthlySpend.objects.filter(business=business, month=month).update(
        amount=F("amount") - amount, messages=F("messages") - messages, updated_at=now
    )


@dataclass(frozen=True)
class MonthSpend:
    month: date
    amount: Decimal
    messages: int
    budget: Decimal | None

    @property
    def share(self) -> int | None:
        """Percent of the budget spent (capped at 100 for the bar), or None without a budget."""
        if not self.budget:
            return None
        return min(100, int(self.amount * 100 / self.budget))


def spend_this_month(*, business: Business, now: datetime) -> MonthSpend:
    """The month's spend so far against the budget (what the dashboard shows)."""
    month = month_of(business=business, now=now)
    row = MonthlySpend.objects.filter(business=business, month=month).values_list("amount", "messages").first()
    amount, messages = row or (FREE, 0)
    return MonthSpend(month=month, amount=amount, messages=messages, budget=business.monthly_budget)
