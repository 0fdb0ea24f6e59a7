"""CSV import of members with their past visits: checked whole, then written set-based.

Members file (header row required; only ``first_name`` or a phone or email is needed per row):
``card_code, first_name, last_name, phone, email, birthday, joined_on, consent_push,
consent_sms, consent_whatsapp, consent_email, stamps, points``. ``stamps`` and ``points`` are
opening balances, recorded as an ``adjustment`` in the ledger so balances always equal it.

Visits file (optional): ``card_code, occurred_at, kind, stamps, points, amount``; a card code of
this file or of an existing member; ``occurred_at`` as ISO date-time (a time without offset is
read in the business's time zone) or a date (noon local); ``kind`` defaults to purchase.

Nothing is written unless every row of both files is valid.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from .models import (
    CHANNELS,
    Business,
    ConsentEvent,
    ConsentSource,
    Member,
    Visit,
    VisitKind,
    VisitSource,
    card_code_new,
)
from .services import members_recompute_totals, phone_normalise, suppressed_values

MEMBER_COLUMNS = [
    "card_code", "first_name", "last_name", "phone", "email", "birthday", "joined_on",
    "consent_push", "consent_sms", "consent_whatsapp", "consent_email", "stamps", "points",
]  # fmt: skip
VISIT_COLUMNS = ["card_code", "occurred_at", "kind", "stamps", "points", "amount"]
MAX_ROWS = 200_000
TRUE = {"1", "yes", "y", "true", "t", "x"}
FALSE = {"", "0", "no", "n", "false", "f"}


@dataclass
class RowError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.message}"


@dataclass
class ImportReport:
    members: int = 0
    visits: int = 0
    suppressed: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFailed(Exception):
    def __init__(self, report: ImportReport):
        self.report = report
        super().__init__("\n".join(str(e) for e in report.errors))


def _rows(text: str, name: str, columns: list[str], required: set[str], report: ImportReport):
    if "\x00" in text:
        report.errors.append(RowError(name, 1, "the file contains NUL characters; is it really a CSV file?"))
        return []
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        report.errors.append(RowError(name, 1, "the file is empty; a header row is needed"))
        return []
    reader.fieldnames = header
    unknown = [h for h in header if h not in columns]
    missing = required - set(header)
    if unknown:
        report.errors.append(
            RowError(name, 1, f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(columns)}")
        )
    if missing:
        report.errors.append(RowError(name, 1, f"missing column(s) {', '.join(sorted(missing))}"))
    if unknown or missing:
        return []
    rows = []
    for row in reader:
        if None in row:
            report.errors.append(RowError(name, reader.line_num, "more values than columns"))
            continue
        values = {k: (v or "").strip() for k, v in row.items()}
        if not any(values.values()):
            continue
        rows.append((reader.line_num, values))
        if len(rows) > MAX_ROWS:
            report.errors.append(RowError(name, reader.line_num, f"more than {MAX_ROWS} rows; split the file"))
            break
    return rows


def _bool(value: str) -> bool:
    v = value.lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise ValueError(f"“{value}” is not yes or no")


def _int(value: str, label: str) -> int:
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{label} “{value}” is not a whole number") from None


def _date(value: str, label: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{label} “{value}” is not a date (YYYY-MM-DD)") from None


def _when(value: str, business: Business) -> datetime:
    if not value:
        raise ValueError("occurred_at is required")
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(12))
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"occurred_at “{value}” is not an ISO date-time (YYYY-MM-DD HH:MM)") from None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=business.tzinfo)
    return moment


def members_import(*, business: Business, members_csv: str, visits_csv: str = "", recorded_by=None) -> ImportReport:
    """Check both files whole; import everything, or nothing and raise ImportFailed."""
    report = ImportReport()
    now = timezone.now()
    today = timezone.localdate(now, business.tzinfo)
    new_members: list[tuple[Member, dict[str, bool], int, int]] = []
    seen_codes: dict[str, int] = {}

    for line, row in _rows(members_csv, "members file", MEMBER_COLUMNS, {"first_name"}, report):
        try:
            code = (row.get("card_code") or "").upper()
            if code in seen_codes:
                raise ValueError(f"card code {code} is also on line {seen_codes[code]}")
            if not (row.get("first_name") or row.get("phone") or row.get("email")):
                raise ValueError("a member needs at least a first name, a phone or an email")
            try:
                phone = phone_normalise(row.get("phone", ""), region=business.country)
            except ValidationError as exc:
                raise ValueError(f"phone: {exc.messages[0]}") from None
            email = row.get("email", "").lower()
            if email:
                try:
                    validate_email(email)
                except ValidationError:
                    raise ValueError(f"email “{email}” is not a valid address") from None
            joined = _date(row.get("joined_on", ""), "joined_on") or today
            if joined > today:
                raise ValueError(f"joined_on {joined} is in the future")
            member = Member(
                business=business,
                first_name=row.get("first_name", "")[:80],
                last_name=row.get("last_name", "")[:80],
                phone=phone,
                email=email,
                birthday=_date(row.get("birthday", ""), "birthday"),
                joined_on=joined,
                card_code=code or card_code_new(),
            )
            consents = {c: _bool(row.get(f"consent_{c}", "")) for c in CHANNELS}
            stamps = _int(row.get("stamps", ""), "stamps")
            points = _int(row.get("points", ""), "points")
            if stamps < 0 or points < 0:
                raise ValueError("opening stamps and points cannot be negative")
        except ValueError as exc:
            report.errors.append(RowError("members file", line, str(exc)))
            continue
        if code:
            seen_codes[code] = line
        new_members.append((member, consents, stamps, points))

    if seen_codes:
        taken = set(
            Member.objects.filter(business=business, card_code__in=list(seen_codes)).values_list("card_code", flat=True)
        )
        for code in sorted(taken, key=lambda c: seen_codes[c]):
            report.errors.append(
                RowError("members file", seen_codes[code], f"card code {code} already belongs to a member")
            )

    parsed_visits: list[tuple[int, str, Visit]] = []
    if visits_csv.strip():
        for line, row in _rows(visits_csv, "visits file", VISIT_COLUMNS, {"card_code", "occurred_at"}, report):
            try:
                kind = (row.get("kind") or VisitKind.PURCHASE).lower()
                if kind not in VisitKind.values:
                    raise ValueError(f"kind “{kind}” is not one of {', '.join(VisitKind.values)}")
                when = _when(row["occurred_at"], business)
                if when > now:
                    raise ValueError(f"occurred_at {row['occurred_at']} is in the future")
                amount = None
                if row.get("amount"):
                    try:
                        amount = Decimal(row["amount"])
                    except InvalidOperation:
                        raise ValueError(f"amount “{row['amount']}” is not a number") from None
                    if amount < 0 or amount >= Decimal("100000000"):
                        raise ValueError(f"amount {amount} is out of range")
                    amount = amount.quantize(Decimal("0.01"))
                visit = Visit(
                    business=business,
                    kind=kind,
                    stamps_delta=_int(row.get("stamps", ""), "stamps"),
                    points_delta=_int(row.get("points", ""), "points"),
                    amount=amount,
                    occurred_at=when,
                    recorded_by=recorded_by,
                    source=VisitSource.IMPORT,
                )
            except ValueError as exc:
                report.errors.append(RowError("visits file", line, str(exc)))
                continue
            parsed_visits.append((line, row["card_code"].upper(), visit))

    new_codes = {m.card_code for m, *_ in new_members}
    unknown_codes = {code for _, code, _ in parsed_visits if code not in new_codes}
    existing = dict(
        Member.objects.filter(business=business, card_code__in=list(unknown_codes)).values_list("card_code", "pk")
    )
    for line, code, _ in parsed_visits:
        if code not in new_codes and code not in existing:
            report.errors.append(RowError("visits file", line, f"no member with card code {code}"))

    if report.errors:
        report.errors.sort(key=lambda e: (e.file, e.line))
        raise ImportFailed(report)

    suppressed = suppressed_values(business=business, values=[v for m, *_ in new_members for v in (m.phone, m.email)])
    with transaction.atomic():
        members = []
        for member, consents, _, _ in new_members:
            if member.phone in suppressed or member.email in suppressed:
                consents.clear()
                report.suppressed += 1
            for channel, value in consents.items():
                setattr(member, f"consent_{channel}", value)
            members.append(member)
        Member.objects.bulk_create(members, batch_size=2000)
        by_code = {m.card_code: m for m in members}
        ConsentEvent.objects.bulk_create(
            (
                ConsentEvent(
                    business=business, member=m, channel=c, granted=True, source=ConsentSource.IMPORT, occurred_at=now
                )
                for m, consents, _, _ in new_members
                for c, v in consents.items()
                if v
            ),
            batch_size=2000,
        )
        visits = [
            Visit(
                business=business,
                member=m,
                kind=VisitKind.ADJUSTMENT,
                stamps_delta=stamps,
                points_delta=points,
                occurred_at=now,
                recorded_by=recorded_by,
                source=VisitSource.IMPORT,
                note="Opening balance",
            )
            for m, _, stamps, points in new_members
            if stamps or points
        ]
        for _, code, visit in parsed_visits:
            if code in by_code:
                visit.member = by_code[code]
            else:
                visit.member_id = existing[code]
            visits.append(visit)
        Visit.objects.bulk_create(visits, batch_size=5000)
        touched = [m.pk for m in members] + list(existing.values())
        members_recompute_totals(business=business, member_ids=touched)
    report.members = len(members)
    report.visits = len(parsed_visits)
    return report
