"""CSV import of members with their past visits: checked whole, then written set-based.

Members file (header row required; only ``first_name`` or a phone or email is needed per row):
``card_code, first_name, last_name, phone, email, birthday, joined_on, consent_push,
consent_sms, consent_whatsapp, consent_email, stamps, points``. ``stamps`` and ``points`` are
opening balances, recorded as an ``adjustment`` in the ledger so balances always equal it.

Visits file (optional): ``card_code, occurred_at, kind, stamps, points, amount``; a card code of
this file or of an existing member; ``occurred_at`` as ISO date-time (a time without offset is
read in the business's time zone) or a date (noon local); ``kind`` defaults to purchase.

Nothing is written unless every row of both files is valid. A cell is only ever text: nothing is
evaluated, so a spreadsheet formula in a name is imported as those characters.

An upload becomes an :class:`~members.models.ImportJob` (``import_job_create``) that a worker runs
(``import_job_run``): every row is checked first (outside any transaction), then everything is
written in one transaction; progress goes to the job row on a connection of its own.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Q
from django.db.models.sql import UpdateQuery
from django.db.models.sql.constants import CURSOR
from django.utils import timezone

from .models import (
    CHANNELS,
    Business,
    ConsentEvent,
    ConsentSource,
    ImportJob,
    ImportStatus,
    Member,
    Suppression,
    Visit,
    VisitKind,
    VisitSource,
    card_code_new,
)
from .services import members_recompute_totals, phone_normalise, suppression_digest

log = logging.getLogger(__name__)

MEMBER_COLUMNS = [
    "card_code", "first_name", "last_name", "phone", "email", "birthday", "joined_on",
    "consent_push", "consent_sms", "consent_whatsapp", "consent_email", "stamps", "points",
]  # fmt: skip
VISIT_COLUMNS = ["card_code", "occurred_at", "kind", "stamps", "points", "amount"]
MEMBERS_FILE, VISITS_FILE = "members file", "visits file"
MAX_ROWS = 200_000
TRUE = {"1", "yes", "y", "true", "t", "x"}
FALSE = {"", "0", "no", "n", "false", "f"}
# The columns' own limits: PostgreSQL's integer, and the money columns' digits (an amount has 10,
# a member's total spent 12, both with 2 decimals).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
AMOUNT_LIMIT = Decimal("100000000")
TOTAL_SPENT_LIMIT = Decimal("10000000000")
TEXT_LIMITS = {f: Member._meta.get_field(f).max_length for f in ("card_code", "first_name", "last_name", "email")}
CHUNK = 5000  # rows per bulk insert, per progress write while writing
CHECK_EVERY = 2000  # rows between progress writes while checking
IN_CHUNK = 5000  # card codes per IN (…) query: SQLite allows 32,766 parameters
STALE = timedelta(minutes=5)  # a running job without a heartbeat this long lost its worker


@dataclass
class RowError:
    file: str
    line: int
    message: str
    field: str = ""

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


class Progress:
    """Told how far an import is; the plain one (the command, tests) listens to nothing."""

    def checked(self, rows: int) -> None:
        pass

    def written(self, rows: int) -> None:
        pass

    def succeeded(self, report: ImportReport) -> None:
        """Called inside the import's transaction, after the last write."""


class _Bad(ValueError):
    """A bad value in a row: which column, and what is wrong with it."""

    def __init__(self, column: str, message: str):
        self.column = column
        super().__init__(message)


def _records(text: str, name: str, columns: list[str], required: set[str], report: ImportReport):
    """The rows of one file as (line, {column: value}), after checking its header.

    The reader is strict: a quote that is never closed is an error at the line where its row
    began, not a value swallowing the rest of the file.
    """
    if "\x00" in text:
        report.errors.append(RowError(name, 1, "the file contains NUL characters; is it really a CSV file?"))
        return
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        report.errors.append(RowError(name, 1, f"the header row is not valid CSV ({exc})"))
        return
    if not header:
        report.errors.append(RowError(name, 1, "the file is empty; a header row is needed"))
        return
    unknown = [h for h in header if h not in columns]
    missing = required - set(header)
    if unknown:
        report.errors.append(
            RowError(
                name,
                1,
                f"unknown column{'' if len(unknown) == 1 else 's'} {', '.join(unknown)}; allowed: {', '.join(columns)}",
            )
        )
    if missing:
        report.errors.append(
            RowError(name, 1, f"missing column{'' if len(missing) == 1 else 's'} {', '.join(sorted(missing))}")
        )
    if unknown or missing:
        return
    rows = 0
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader cannot find where the next row starts: stop at this one.
            report.errors.append(RowError(name, line, f"this row is not valid CSV ({exc}); is a quote not closed?"))
            return
        if len(values) > len(header):
            report.errors.append(RowError(name, line, "more values than columns"))
            continue
        row = dict(zip(header, (v.strip() for v in values), strict=False))
        if not any(row.values()):
            continue
        rows += 1
        if rows > MAX_ROWS:
            report.errors.append(RowError(name, line, f"more than {MAX_ROWS:,} rows; split the file"))
            return
        yield line, row


def import_file_check(*, text: str, visits: bool = False) -> int:
    """The upload's own check (header, row limit): its number of rows, or ImportFailed."""
    report = ImportReport()
    name, columns, required = _file_spec(visits)
    rows = sum(1 for _ in _records(text, name, columns, required, report))
    header_or_limit = [e for e in report.errors if e.line == 1 or "rows; split" in e.message]
    if header_or_limit:
        report.errors = header_or_limit
        raise ImportFailed(report)
    return rows


def _file_spec(visits: bool) -> tuple[str, list[str], set[str]]:
    if visits:
        return VISITS_FILE, VISIT_COLUMNS, {"card_code", "occurred_at"}
    return MEMBERS_FILE, MEMBER_COLUMNS, {"first_name"}


def _text(row: dict[str, str], column: str) -> str:
    value = row.get(column, "")
    if "\n" in value or "\r" in value:
        raise _Bad(column, f"{column} has a line break in it; is a closing quote missing?")
    limit = TEXT_LIMITS.get(column)
    if limit and len(value) > limit:
        raise _Bad(column, f"{column} is {len(value)} characters long; at most {limit} are allowed")
    return value


def _bool(row: dict[str, str], column: str) -> bool:
    value = row.get(column, "")
    v = value.lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise _Bad(column, f"{column} “{value}” is not yes or no")


def _int(row: dict[str, str], column: str) -> int:
    value = row.get(column, "")
    if not value:
        return 0
    try:
        number = int(value)
    except ValueError:
        raise _Bad(column, f"{column} “{value}” is not a whole number") from None
    if not INT_MIN <= number <= INT_MAX:
        raise _Bad(column, f"{column} {value} is too large; at most {INT_MAX:,}")
    return number


def _date(row: dict[str, str], column: str) -> date | None:
    value = row.get(column, "")
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Bad(column, f"{column} “{value}” is not a date (YYYY-MM-DD)") from None


def _when(value: str, business: Business) -> datetime:
    if not value:
        raise _Bad("occurred_at", "occurred_at is required")
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(12))
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad("occurred_at", f"occurred_at “{value}” is not an ISO date-time (YYYY-MM-DD HH:MM)") from None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=business.tzinfo)
    return moment


def _amount(row: dict[str, str]) -> Decimal | None:
    value = row.get("amount", "")
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _Bad("amount", f"amount “{value}” is not a number") from None
    if not amount.is_finite() or amount < 0 or amount >= AMOUNT_LIMIT:
        raise _Bad("amount", f"amount {value} is out of range (0 to {AMOUNT_LIMIT - 1:,})")
    return amount.quantize(Decimal("0.01"))


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# Values these columns take as they are (already checked and typed); others are prepared by their field.
_PLAIN = {"CharField", "TextField", "BooleanField", "IntegerField", "PositiveIntegerField", "ForeignKey"}


def _insert(model, rows: list[dict], *, now: datetime, returning: tuple[str, ...] = ()) -> list[tuple]:
    """Multi-row INSERTs of values already checked, without a model instance per row (building and
    preparing those was most of a big import's time in ``bulk_create``). Columns the rows leave
    out get the field's default, prepared once. Every row has the same keys (attnames)."""
    if not rows:
        return []
    qn = connection.ops.quote_name
    given, constants = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        if f.attname in rows[0]:
            given.append(f)
        else:
            default = now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()
            constants.append((f, f.get_db_prep_save(default, connection)))
    prepare = [(f.attname, None if f.get_internal_type() in _PLAIN else f) for f in given]
    fixed = [value for _, value in constants]
    columns = ", ".join(qn(f.column) for f in [*given, *(f for f, _ in constants)])
    one = "(" + ", ".join(["%s"] * (len(given) + len(fixed))) + ")"
    back = f" RETURNING {', '.join(qn(model._meta.get_field(r).column) for r in returning)}" if returning else ""
    per = max(1, min(CHUNK, 30_000 // (len(given) + len(fixed))))  # SQLite: 32,766 parameters a statement
    out: list[tuple] = []
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, per):
            params: list = []
            for row in chunk:
                params.extend(row[a] if f is None else f.get_db_prep_save(row[a], connection) for a, f in prepare)
                params.extend(fixed)
            cursor.execute(
                f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES {', '.join([one] * len(chunk))}{back}",
                params,
            )
            if returning:
                out.extend(cursor.fetchall())
    return out


def _members_by_code(*, business: Business, codes: list[str]) -> dict[str, tuple[int, int, int, Decimal]]:
    """Existing members of these card codes: (pk, stamps, points, total spent); a few queries."""
    found = {}
    for chunk in _chunks(codes, IN_CHUNK):
        rows = Member.objects.filter(business=business, card_code__in=chunk).values_list(
            "card_code", "pk", "stamps_balance", "points_balance", "total_spent"
        )
        found.update({code: rest for code, *rest in rows})
    return found


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
                raise _Bad(column, f"this row takes the member's {column} balance past {INT_MAX:,}")
        if self.spent >= TOTAL_SPENT_LIMIT:
            raise _Bad("amount", f"this row takes the member's total spent past {TOTAL_SPENT_LIMIT - 1:,}")


def members_import(
    *,
    business: Business,
    members_csv: str,
    visits_csv: str = "",
    recorded_by=None,
    progress: Progress | None = None,
) -> ImportReport:
    """Check both files whole; import everything in one transaction, or nothing and raise
    ImportFailed with every bad row."""
    progress = progress or Progress()
    report = ImportReport()
    now = timezone.now()
    today = timezone.localdate(now, business.tzinfo)
    new_members: list[tuple[dict, dict[str, bool], int, int]] = []
    seen_codes: dict[str, int] = {}
    totals: dict[str, _Totals] = {}
    checked = 0
    recorded_by_id = recorded_by.pk if recorded_by is not None else None

    def tick() -> None:
        nonlocal checked
        checked += 1
        if checked % CHECK_EVERY == 0:
            progress.checked(checked)

    for line, row in _records(members_csv, MEMBERS_FILE, MEMBER_COLUMNS, {"first_name"}, report):
        tick()
        try:
            code = _text(row, "card_code").upper()
            if code in seen_codes:
                raise _Bad("card_code", f"card code {code} is also on line {seen_codes[code]}")
            first_name, last_name = _text(row, "first_name"), _text(row, "last_name")
            if not (first_name or row.get("phone") or row.get("email")):
                raise _Bad("first_name", "a member needs at least a first name, a phone or an email")
            try:
                phone = phone_normalise(row.get("phone", ""), region=business.country)
            except ValidationError as exc:
                raise _Bad("phone", f"phone: {exc.messages[0]}") from None
            email = _text(row, "email").lower()
            if email:
                try:
                    validate_email(email)
                except ValidationError:
                    raise _Bad("email", f"email “{email}” is not a valid address") from None
            joined = _date(row, "joined_on") or today
            if joined > today:
                raise _Bad("joined_on", f"joined_on {joined} is in the future")
            birthday = _date(row, "birthday")
            consents = {c: _bool(row, f"consent_{c}") for c in CHANNELS}
            stamps, points = _int(row, "stamps"), _int(row, "points")
            if stamps < 0 or points < 0:
                raise _Bad("stamps" if stamps < 0 else "points", "opening stamps and points cannot be negative")
        except _Bad as exc:
            report.errors.append(RowError(MEMBERS_FILE, line, str(exc), exc.column))
            continue
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
        if code:
            seen_codes[code] = line
        totals[member["card_code"]] = _Totals(stamps=stamps, points=points)
        new_members.append((member, consents, stamps, points))

    taken = _members_by_code(business=business, codes=list(seen_codes))
    for code in sorted(taken, key=lambda c: seen_codes[c]):
        report.errors.append(
            RowError(MEMBERS_FILE, seen_codes[code], f"card code {code} already belongs to a member", "card_code")
        )

    parsed_visits: list[tuple[int, str, dict]] = []
    if visits_csv.strip():
        for line, row in _records(visits_csv, VISITS_FILE, VISIT_COLUMNS, {"card_code", "occurred_at"}, report):
            tick()
            try:
                kind = (row.get("kind") or VisitKind.PURCHASE).lower()
                if kind not in VisitKind.values:
                    raise _Bad("kind", f"kind “{kind}” is not one of {', '.join(VisitKind.values)}")
                when = _when(row.get("occurred_at", ""), business)
                if when > now:
                    raise _Bad("occurred_at", f"occurred_at {row['occurred_at']} is in the future")
                visit = {
                    "business_id": business.pk,
                    "kind": kind,
                    "stamps_delta": _int(row, "stamps"),
                    "points_delta": _int(row, "points"),
                    "amount": _amount(row),
                    "occurred_at": when,
                    "recorded_by_id": recorded_by_id,
                    "source": VisitSource.IMPORT,
                    "note": "",
                }
            except _Bad as exc:
                report.errors.append(RowError(VISITS_FILE, line, str(exc), exc.column))
                continue
            parsed_visits.append((line, _text(row, "card_code").upper(), visit))

    existing = _members_by_code(business=business, codes=list({c for _, c, _ in parsed_visits if c not in totals}))
    for code, (_, stamps, points, spent) in existing.items():
        totals[code] = _Totals(stamps=stamps, points=points, spent=spent)
    for line, code, visit in parsed_visits:
        if code not in totals:
            report.errors.append(RowError(VISITS_FILE, line, f"no member with card code {code}", "card_code"))
            continue
        try:
            spent = visit["amount"] if visit["kind"] == VisitKind.PURCHASE else None
            totals[code].add(stamps=visit["stamps_delta"], points=visit["points_delta"], spent=spent)
        except _Bad as exc:
            report.errors.append(RowError(VISITS_FILE, line, str(exc), exc.column))
    progress.checked(checked)

    if report.errors:
        report.errors.sort(key=lambda e: (e.file, e.line))
        raise ImportFailed(report)

    # One query per file: the business's whole suppression list (hashed erased phones and emails).
    suppressed = set(Suppression.objects.filter(business=business).values_list("digest", flat=True))
    with transaction.atomic():
        written = 0
        member_ids: list[int] = []
        for chunk in _chunks(new_members, CHUNK):
            for member, consents, _, _ in chunk:
                if suppressed and any(
                    suppression_digest(business=business, value=v) in suppressed
                    for v in (member["phone"], member["email"])
                    if v
                ):
                    consents.clear()
                    report.suppressed += 1
                for channel in CHANNELS:
                    member[f"consent_{channel}"] = consents.get(channel, False)
            ids = dict(_insert(Member, [m for m, *_ in chunk], now=now, returning=("card_code", "id")))
            member_ids.extend(ids.values())
            _insert(
                ConsentEvent,
                [
                    {
                        "business_id": business.pk,
                        "member_id": ids[m["card_code"]],
                        "channel": c,
                        "granted": True,
                        "source": ConsentSource.IMPORT,
                        "occurred_at": now,
                    }
                    for m, consents, _, _ in chunk
                    for c, v in consents.items()
                    if v
                ],
                now=now,
            )
            _insert(
                Visit,
                [
                    {
                        "business_id": business.pk,
                        "member_id": ids[m["card_code"]],
                        "kind": VisitKind.ADJUSTMENT,
                        "stamps_delta": stamps,
                        "points_delta": points,
                        "occurred_at": now,
                        "recorded_by_id": recorded_by_id,
                        "source": VisitSource.IMPORT,
                        "note": "Opening balance",
                    }
                    for m, _, stamps, points in chunk
                    if stamps or points
                ],
                now=now,
            )
            for member, *_ in chunk:
                member["id"] = ids[member["card_code"]]
            written += len(chunk)
            progress.written(written)
        by_code = {m["card_code"]: m["id"] for m, *_ in new_members}
        for chunk in _chunks(parsed_visits, CHUNK):
            for _, code, visit in chunk:
                visit["member_id"] = by_code[code] if code in by_code else existing[code][0]
            _insert(Visit, [v for _, _, v in chunk], now=now)
            written += len(chunk)
            progress.written(written)
        touched = member_ids + [pk for pk, *_ in existing.values()]
        for chunk in _chunks(touched, IN_CHUNK):
            members_recompute_totals(business=business, member_ids=chunk)
        report.members = len(new_members)
        report.visits = len(parsed_visits)
        progress.succeeded(report)
    return report


# --- the background job -----------------------------------------------------------------------


def import_job_create(
    *,
    business: Business,
    created_by,
    members_name: str,
    members_csv: str,
    visits_name: str = "",
    visits_csv: str = "",
    total_rows: int,
    enqueue: Callable[[ImportJob], None],
) -> ImportJob:
    """Store a checked upload as a queued job; ``enqueue`` runs once the job has committed."""
    now = timezone.now()
    with transaction.atomic():
        job = ImportJob.objects.create(
            business=business,
            created_by=created_by,
            members_name=members_name[:255],
            members_csv=members_csv,
            visits_name=visits_name[:255],
            visits_csv=visits_csv,
            total_rows=total_rows,
            created_at=now,
            updated_at=now,
        )
        transaction.on_commit(lambda: enqueue(job))
    return job


class JobProgress(Progress):
    """Progress written to the job row at once, while the import's transaction is still open.

    On PostgreSQL the writes go through a second connection of their own (autocommit), so the
    page sees them; SQLite has a single writer, so there they share the import's connection and
    are seen while checking, and at the commit for the writing half.
    """

    def __init__(self, job: ImportJob):
        self.job_id = job.pk
        self.own = connection.vendor == "postgresql"
        self.connection = connections.create_connection(DEFAULT_DB_ALIAS) if self.own else connection

    def _update(self, **values) -> None:
        query = UpdateQuery(ImportJob)
        query.add_update_values({**values, "updated_at": timezone.now()})
        query.add_q(Q(pk=self.job_id))
        query.get_compiler(connection=self.connection).execute_sql(CURSOR)

    def checked(self, rows: int) -> None:
        self._update(rows_checked=rows)

    def written(self, rows: int) -> None:
        self._update(rows_done=rows)

    def succeeded(self, report: ImportReport) -> None:
        # On the import's own connection: the job is done exactly when its rows are committed.
        ImportJob.objects.filter(pk=self.job_id).update(
            status=ImportStatus.DONE,
            rows_done=report.members + report.visits,
            members_imported=report.members,
            visits_imported=report.visits,
            suppressed=report.suppressed,
            members_csv="",
            visits_csv="",
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )

    def close(self) -> None:
        if self.own:
            self.connection.close()


def _job_fail(job_id: int, errors: list[RowError]) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.FAILED,
        errors=[asdict(e) for e in errors],
        members_csv="",
        visits_csv="",
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


def import_job_run(*, job_id: int) -> str:
    """Run one queued import (the worker's entry point); returns the job's status.

    Claimed by one conditional update: a redelivered task finds it done or running; a running job
    whose heartbeat stopped (its worker died, its transaction rolled back) is taken again.
    """
    now = timezone.now()
    claimable = Q(status=ImportStatus.QUEUED) | Q(status=ImportStatus.RUNNING, updated_at__lt=now - STALE)
    claimed = ImportJob.objects.filter(claimable, pk=job_id).update(
        status=ImportStatus.RUNNING, started_at=now, updated_at=now, rows_checked=0, rows_done=0
    )
    if not claimed:
        return ImportJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"
    job = ImportJob.objects.select_related("business", "created_by").get(pk=job_id)
    progress = JobProgress(job)
    try:
        members_import(
            business=job.business,
            members_csv=job.members_csv,
            visits_csv=job.visits_csv,
            recorded_by=job.created_by,
            progress=progress,
        )
    except ImportFailed as exc:
        _job_fail(job_id, exc.report.errors)
        return ImportStatus.FAILED
    except IntegrityError:
        # A card code was taken by someone else between the check and the write.
        log.warning("import %s collided with a concurrent write", job_id, exc_info=True)
        _job_fail(job_id, [RowError(MEMBERS_FILE, 1, "a card code was taken while importing; upload the file again")])
        return ImportStatus.FAILED
    except Exception:
        log.exception("import %s failed", job_id)
        _job_fail(job_id, [RowError(MEMBERS_FILE, 1, "the import failed unexpectedly; nothing was imported")])
        return ImportStatus.FAILED
    finally:
        progress.close()
    return ImportStatus.DONE
