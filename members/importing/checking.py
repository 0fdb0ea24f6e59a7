"""Every row of both files checked before anything is written: what to write, or every error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from ..models import CHANNELS, Business, Member, VisitKind, VisitSource, card_code_new
from ..services import phone_normalise
from . import cells
from .cells import INT_MAX, INT_MIN, TOTAL_SPENT_LIMIT, Bad
from .files import MEMBER_COLUMNS, MEMBERS_FILE, MEMBERS_REQUIRED, VISIT_COLUMNS, VISITS_FILE, VISITS_REQUIRED, records
from .report import ImportReport, Progress, RowError

CHECK_EVERY = 2000  # rows between progress writes while checking
IN_CHUNK = 5000  # card codes per IN (…) query: SQLite allows 32,766 parameters


@dataclass
class NewMember:
    row: dict  # the member's columns by attname, as they are inserted
    consents: dict[str, bool]
    stamps: int  # opening balances
    points: int
    code_given: str  # the card code of the file ("": a new one was drawn)


@dataclass
class NewVisit:
    line: int
    card_code: str
    row: dict  # the visit's columns by attname; its member_id is set when writing


@dataclass
class ImportPlan:
    """What a clean check found to write."""

    members: list[NewMember]
    visits: list[NewVisit]
    existing: dict[str, tuple[int, int, int, Decimal]]  # visits' members already in the business, by code


@dataclass
class _Totals:
    """Running sums per card code, checked against the columns they end up in."""

    stamps: int = 0
    points: int = 0
    spent: Decimal = Decimal("0")

    def add(self, *, stamps: int, points: int, spent: Decimal | None) -> None:
        self.stamps += stamps
        self.points += points
        self.spent += spent or 0
        for column, total in (("stamps", self.stamps), ("points", self.points)):
            if not INT_MIN <= total <= INT_MAX:
                raise Bad(column, f"this row takes the member's {column} balance past {INT_MAX:,}")
        if self.spent >= TOTAL_SPENT_LIMIT:
            raise Bad("amount", f"this row takes the member's total spent past {TOTAL_SPENT_LIMIT - 1:,}")


class _Counter:
    """Rows checked so far, told to the progress every CHECK_EVERY rows."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.rows = 0

    def tick(self) -> None:
        self.rows += 1
        if self.rows % CHECK_EVERY == 0:
            self.progress.checked(self.rows)


def chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def import_check(
    *,
    business: Business,
    members_csv: str,
    visits_csv: str,
    now: datetime,
    recorded_by_id: int | None,
    progress: Progress,
    report: ImportReport,
) -> ImportPlan:
    """Check every row of both files; the errors go to ``report``, sorted by file and line."""
    counter = _Counter(progress)
    today = timezone.localdate(now, business.tzinfo)
    members = _members_check(business=business, text=members_csv, today=today, counter=counter, report=report)
    visits: list[NewVisit] = []
    if visits_csv.strip():
        visits = _visits_check(
            business=business, text=visits_csv, now=now, recorded_by_id=recorded_by_id, counter=counter, report=report
        )
    existing = _totals_check(business=business, members=members, visits=visits, report=report)
    progress.checked(counter.rows)
    report.errors.sort(key=lambda e: (e.file, e.line))
    return ImportPlan(members=members, visits=visits, existing=existing)


# --- the members file ---------------------------------------------------------------------------


def _members_check(
    *, business: Business, text: str, today: date, counter: _Counter, report: ImportReport
) -> list[NewMember]:
    """The members file's rows; a card code twice in the file or already a member's is an error."""
    members: list[NewMember] = []
    seen_codes: dict[str, int] = {}
    for line, row in records(text, MEMBERS_FILE, MEMBER_COLUMNS, MEMBERS_REQUIRED, report):
        counter.tick()
        try:
            member = member_row_check(row, business=business, today=today, seen_codes=seen_codes)
        except Bad as exc:
            report.errors.append(RowError(MEMBERS_FILE, line, str(exc), exc.column))
            continue
        if member.code_given:
            seen_codes[member.code_given] = line
        members.append(member)
    taken = members_by_code(business=business, codes=list(seen_codes))
    for code in sorted(taken, key=lambda c: seen_codes[c]):
        report.errors.append(
            RowError(MEMBERS_FILE, seen_codes[code], f"card code {code} already belongs to a member", "card_code")
        )
    return members


def member_row_check(row: dict[str, str], *, business: Business, today: date, seen_codes: dict[str, int]) -> NewMember:
    """One row of the members file as the member to insert; raises Bad at its first bad value."""
    code = cells.text(row, "card_code").upper()
    if code in seen_codes:
        raise Bad("card_code", f"card code {code} is also on line {seen_codes[code]}")
    first_name, last_name = cells.text(row, "first_name"), cells.text(row, "last_name")
    if not (first_name or row.get("phone") or row.get("email")):
        raise Bad("first_name", "a member needs at least a first name, a phone or an email")
    phone, email = _contact(row, business=business)
    joined = cells.day(row, "joined_on") or today
    if joined > today:
        raise Bad("joined_on", f"joined_on {joined} is in the future")
    birthday = cells.day(row, "birthday")
    consents = {c: cells.yes_no(row, f"consent_{c}") for c in CHANNELS}
    stamps, points = cells.whole(row, "stamps"), cells.whole(row, "points")
    if stamps < 0 or points < 0:
        raise Bad("stamps" if stamps < 0 else "points", "opening stamps and points cannot be negative")
    member = {
        "business_id": business.pk,
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
        "email": email,
        "birthday": birthday,
        "joined_on": joined,
        "card_code": code or card_code_new(),
    }
    return NewMember(row=member, consents=consents, stamps=stamps, points=points, code_given=code)


def _contact(row: dict[str, str], *, business: Business) -> tuple[str, str]:
    """The row's phone (E.164, read in the business's country) and email (lower case)."""
    try:
        phone = phone_normalise(row.get("phone", ""), region=business.country)
    except ValidationError as exc:
        raise Bad("phone", f"phone: {exc.messages[0]}") from None
    email = cells.text(row, "email").lower()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise Bad("email", f"email “{email}” is not a valid address") from None
    return phone, email


# --- the visits file ----------------------------------------------------------------------------


def _visits_check(
    *,
    business: Business,
    text: str,
    now: datetime,
    recorded_by_id: int | None,
    counter: _Counter,
    report: ImportReport,
) -> list[NewVisit]:
    visits: list[NewVisit] = []
    for line, row in records(text, VISITS_FILE, VISIT_COLUMNS, VISITS_REQUIRED, report):
        counter.tick()
        try:
            code = cells.text(row, "card_code").upper()
            visit = visit_row_check(row, business=business, now=now, recorded_by_id=recorded_by_id)
        except Bad as exc:
            report.errors.append(RowError(VISITS_FILE, line, str(exc), exc.column))
            continue
        visits.append(NewVisit(line=line, card_code=code, row=visit))
    return visits


def visit_row_check(row: dict[str, str], *, business: Business, now: datetime, recorded_by_id: int | None) -> dict:
    """One row of the visits file as the visit to insert (without its member); raises Bad."""
    kind = (row.get("kind") or VisitKind.PURCHASE).lower()
    if kind not in VisitKind.values:
        raise Bad("kind", f"kind “{kind}” is not one of {', '.join(VisitKind.values)}")
    when = cells.moment(row.get("occurred_at", ""), business)
    if when > now:
        raise Bad("occurred_at", f"occurred_at {row['occurred_at']} is in the future")
    return {
        "business_id": business.pk,
        "kind": kind,
        "stamps_delta": cells.whole(row, "stamps"),
        "points_delta": cells.whole(row, "points"),
        "amount": cells.amount(row),
        "occurred_at": when,
        "recorded_by_id": recorded_by_id,
        "source": VisitSource.IMPORT,
        "note": "",
    }


# --- both: every visit has its member, and no balance outgrows its column -----------------------


def _totals_check(
    *, business: Business, members: list[NewMember], visits: list[NewVisit], report: ImportReport
) -> dict[str, tuple[int, int, int, Decimal]]:
    """Each visit's member (of the file, else an existing one) and its running totals; returns
    the existing members the visits are for."""
    totals = {m.row["card_code"]: _Totals(stamps=m.stamps, points=m.points) for m in members}
    existing = members_by_code(
        business=business, codes=list({v.card_code for v in visits if v.card_code not in totals})
    )
    for code, (_, stamps, points, spent) in existing.items():
        totals[code] = _Totals(stamps=stamps, points=points, spent=spent)
    for visit in visits:
        if visit.card_code not in totals:
            report.errors.append(
                RowError(VISITS_FILE, visit.line, f"no member with card code {visit.card_code}", "card_code")
            )
            continue
        row = visit.row
        try:
            spent = row["amount"] if row["kind"] == VisitKind.PURCHASE else None
            totals[visit.card_code].add(stamps=row["stamps_delta"], points=row["points_delta"], spent=spent)
        except Bad as exc:
            report.errors.append(RowError(VISITS_FILE, visit.line, str(exc), exc.column))
    return existing


def members_by_code(*, business: Business, codes: list[str]) -> dict[str, tuple[int, int, int, Decimal]]:
    """Existing members of these card codes: (pk, stamps, points, total spent); a few queries."""
    found = {}
    for chunk in chunks(codes, IN_CHUNK):
        rows = Member.objects.filter(business=business, card_code__in=chunk).values_list(
            "card_code", "pk", "stamps_balance", "points_balance", "total_spent"
        )
        found.update({code: rest for code, *rest in rows})
    return found
