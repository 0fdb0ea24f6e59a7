"""A clean check written in one transaction: multi-row INSERTs of CHUNK rows, then the totals."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

from ..models import CHANNELS, Business, ConsentEvent, ConsentSource, Member, Suppression, Visit, VisitKind, VisitSource
from ..services import members_recompute_totals, suppression_digest
from .checking import IN_CHUNK, ImportPlan, NewMember, NewVisit, chunks
from .report import ImportReport, Progress

CHUNK = 5000  # rows per bulk insert, per progress write while writing

# Values these columns take as they are (already checked and typed); others are prepared by their field.
_PLAIN = {"CharField", "TextField", "BooleanField", "IntegerField", "PositiveIntegerField", "ForeignKey"}


def import_write(
    *,
    business: Business,
    plan: ImportPlan,
    now: datetime,
    recorded_by_id: int | None,
    progress: Progress,
    report: ImportReport,
) -> None:
    """Everything the check found, or nothing; ``progress.succeeded`` runs inside the transaction."""
    # One query per file: the business's whole suppression list (hashed erased phones and emails).
    suppressed = set(Suppression.objects.filter(business=business).values_list("digest", flat=True))
    with transaction.atomic():
        by_code = _members_write(
            business=business,
            members=plan.members,
            suppressed=suppressed,
            now=now,
            recorded_by_id=recorded_by_id,
            progress=progress,
            report=report,
        )
        _visits_write(
            visits=plan.visits,
            member_ids={**{code: pk for code, (pk, *_) in plan.existing.items()}, **by_code},
            now=now,
            written=len(plan.members),
            progress=progress,
        )
        touched = list(by_code.values()) + [pk for pk, *_ in plan.existing.values()]
        for chunk in chunks(touched, IN_CHUNK):
            members_recompute_totals(business=business, member_ids=chunk)
        report.members = len(plan.members)
        report.visits = len(plan.visits)
        progress.succeeded(report)


def _members_write(
    *,
    business: Business,
    members: list[NewMember],
    suppressed: set[str],
    now: datetime,
    recorded_by_id: int | None,
    progress: Progress,
    report: ImportReport,
) -> dict[str, int]:
    """The new members with their consent history and opening balances; their ids by card code."""
    by_code: dict[str, int] = {}
    written = 0
    for chunk in chunks(members, CHUNK):
        _consents_settle(chunk, business=business, suppressed=suppressed, report=report)
        ids = dict(insert(Member, [m.row for m in chunk], now=now, returning=("card_code", "id")))
        by_code.update(ids)
        insert(ConsentEvent, _consent_events(chunk, ids=ids, business=business, now=now), now=now)
        insert(
            Visit,
            _opening_balances(chunk, ids=ids, business=business, now=now, recorded_by_id=recorded_by_id),
            now=now,
        )
        written += len(chunk)
        progress.written(written)
    return by_code


def _consents_settle(chunk: list[NewMember], *, business: Business, suppressed: set[str], report: ImportReport):
    """Each member's consent columns; none at all for a phone or email on the suppression list."""
    for member in chunk:
        if suppressed and any(
            suppression_digest(business=business, value=v) in suppressed
            for v in (member.row["phone"], member.row["email"])
            if v
        ):
            member.consents.clear()
            report.suppressed += 1
        for channel in CHANNELS:
            member.row[f"consent_{channel}"] = member.consents.get(channel, False)


def _consent_events(chunk: list[NewMember], *, ids: dict[str, int], business: Business, now: datetime) -> list[dict]:
    return [
        {
            "business_id": business.pk,
            "member_id": ids[m.row["card_code"]],
            "channel": channel,
            "granted": True,
            "source": ConsentSource.IMPORT,
            "occurred_at": now,
        }
        for m in chunk
        for channel, granted in m.consents.items()
        if granted
    ]


def _opening_balances(
    chunk: list[NewMember], *, ids: dict[str, int], business: Business, now: datetime, recorded_by_id: int | None
) -> list[dict]:
    """An adjustment in the ledger per opening balance, so that balances always equal the ledger."""
    return [
        {
            "business_id": business.pk,
            "member_id": ids[m.row["card_code"]],
            "kind": VisitKind.ADJUSTMENT,
            "stamps_delta": m.stamps,
            "points_delta": m.points,
            "occurred_at": now,
            "recorded_by_id": recorded_by_id,
            "source": VisitSource.IMPORT,
            "note": "Opening balance",
        }
        for m in chunk
        if m.stamps or m.points
    ]


def _visits_write(
    *, visits: list[NewVisit], member_ids: dict[str, int], now: datetime, written: int, progress: Progress
) -> None:
    """The visits file's rows, each with its member (new or existing) by card code."""
    for chunk in chunks(visits, CHUNK):
        for visit in chunk:
            visit.row["member_id"] = member_ids[visit.card_code]
        insert(Visit, [v.row for v in chunk], now=now)
        written += len(chunk)
        progress.written(written)


def insert(model, rows: list[dict], *, now: datetime, returning: tuple[str, ...] = ()) -> list[tuple]:
    """Multi-row INSERTs of values already checked, without a model instance per row (building and
    preparing those was most of a big import's time in ``bulk_create``). Columns the rows leave
    out get the field's default, prepared once. Every row has the same keys (attnames)."""
    if not rows:
        return []
    qn = connection.ops.quote_name
    given, constants = _columns(model, rows[0], now=now)
    prepare = [(f.attname, None if f.get_internal_type() in _PLAIN else f) for f in given]
    fixed = [value for _, value in constants]
    columns = ", ".join(qn(f.column) for f in [*given, *(f for f, _ in constants)])
    one = "(" + ", ".join(["%s"] * (len(given) + len(fixed))) + ")"
    back = f" RETURNING {', '.join(qn(model._meta.get_field(r).column) for r in returning)}" if returning else ""
    per = max(1, min(CHUNK, 30_000 // (len(given) + len(fixed))))  # SQLite: 32,766 parameters a statement
    out: list[tuple] = []
    with connection.cursor() as cursor:
        for chunk in chunks(rows, per):
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


def _columns(model, row: dict, *, now: datetime) -> tuple[list, list[tuple]]:
    """The model's fields the rows give, and those they leave out with their prepared default."""
    given, constants = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        if f.attname in row:
            given.append(f)
        else:
            default = now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()
            constants.append((f, f.get_db_prep_save(default, connection)))
    return given, constants
