"""One cell of a row as a typed value, or ``Bad``: which column, and what is wrong with it.

A cell is only ever text: nothing is evaluated, so a spreadsheet formula in a name is imported
as those characters.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from ..models import Business, Member

TRUE = {"1", "yes", "y", "true", "t", "x"}
FALSE = {"", "0", "no", "n", "false", "f"}
# The columns' own limits: PostgreSQL's integer, and the money columns' digits (an amount has 10,
# a member's total spent 12, both with 2 decimals).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
AMOUNT_LIMIT = Decimal("100000000")
TOTAL_SPENT_LIMIT = Decimal("10000000000")
TEXT_LIMITS = {f: Member._meta.get_field(f).max_length for f in ("card_code", "first_name", "last_name", "email")}


class Bad(ValueError):
    """A bad value in a row: which column, and what is wrong with it."""

    def __init__(self, column: str, message: str):
        self.column = column
        super().__init__(message)


def text(row: dict[str, str], column: str) -> str:
    value = row.get(column, "")
    if "\n" in value or "\r" in value:
        raise Bad(column, f"{column} has a line break in it; is a closing quote missing?")
    limit = TEXT_LIMITS.get(column)
    if limit and len(value) > limit:
        raise Bad(column, f"{column} is {len(value)} characters long; at most {limit} are allowed")
    return value


def yes_no(row: dict[str, str], column: str) -> bool:
    value = row.get(column, "")
    v = value.lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise Bad(column, f"{column} “{value}” is not yes or no")


def whole(row: dict[str, str], column: str) -> int:
    value = row.get(column, "")
    if not value:
        return 0
    try:
        number = int(value)
    except ValueError:
        raise Bad(column, f"{column} “{value}” is not a whole number") from None
    if not INT_MIN <= number <= INT_MAX:
        raise Bad(column, f"{column} {value} is too large; at most {INT_MAX:,}")
    return number


def day(row: dict[str, str], column: str) -> date | None:
    value = row.get(column, "")
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Bad(column, f"{column} “{value}” is not a date (YYYY-MM-DD)") from None


def moment(value: str, business: Business) -> datetime:
    """An ISO date-time (without offset: the business's time zone) or a date (noon local)."""
    if not value:
        raise Bad("occurred_at", "occurred_at is required")
    try:
        if len(value) == 10:
            at = datetime.combine(date.fromisoformat(value), time(12))
        else:
            at = datetime.fromisoformat(value)
    except ValueError:
        raise Bad("occurred_at", f"occurred_at “{value}” is not an ISO date-time (YYYY-MM-DD HH:MM)") from None
    if timezone.is_naive(at):
        at = at.replace(tzinfo=business.tzinfo)
    return at


def amount(row: dict[str, str]) -> Decimal | None:
    value = row.get("amount", "")
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise Bad("amount", f"amount “{value}” is not a number") from None
    if not number.is_finite() or number < 0 or number >= AMOUNT_LIMIT:
        raise Bad("amount", f"amount {value} is out of range (0 to {AMOUNT_LIMIT - 1:,})")
    return number.quantize(Decimal("0.01"))
