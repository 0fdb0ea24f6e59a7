"""The visit ledger: one visit recorded, and members' totals rebuilt from it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..models import (
    NOT_IN_PERSON,
    Business,
    Member,
    MemberStatus,
    Visit,
    VisitKind,
)


class DuplicateIdempotencyKey(ValidationError):
    """The key was already used for a different member or a different visit."""


@transaction.atomic
def visit_record(
    *,
    member: Member,
    kind: str,
    stamps: int = 0,
    points: int = 0,
    amount: Decimal | None = None,
    occurred_at: datetime | None = None,
    recorded_by=None,
    source: str,
    idempotency_key: str | None = None,
    note: str = "",
) -> Visit:
    """Record one visit and keep the member's balances and denormalised fields right.

    Only purchases move ``last_purchase_at`` and ``purchase_count``; a backdated purchase never
    moves ``last_purchase_at`` back. With an ``idempotency_key`` already used for this member, the
    first visit is returned (``visit.replayed`` is True) and nothing changes. Concurrency-safe: the
    member row is locked for the update, and a concurrent insert of the same key loses to the
    unique constraint and returns the winner's visit.
    """
    if kind not in VisitKind.values:
        raise ValidationError({"kind": f"Unknown visit kind “{kind}”."})
    occurred_at = occurred_at or timezone.now()
    if timezone.is_naive(occurred_at):
        raise ValueError("occurred_at must be aware")
    if occurred_at > timezone.now() + timedelta(minutes=5):
        raise ValidationError({"occurred_at": "A visit cannot be recorded in the future."})
    if amount is not None and amount < 0:
        raise ValidationError({"amount": "The amount spent cannot be negative."})
    if kind == VisitKind.PURCHASE and (stamps < 0 or points < 0):
        raise ValidationError({"stamps": "A purchase cannot take stamps or points away."})
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not idempotency_key or len(idempotency_key) > 100 or "\x00" in idempotency_key:
            raise ValidationError({"idempotency_key": "The idempotency key must be 1–100 characters."})
        existing = _visit_by_key(member=member, key=idempotency_key)
        if existing is not None:
            return existing

    locked = Member.objects.select_for_update().get(pk=member.pk)
    if locked.status == MemberStatus.ERASED:
        raise ValidationError("This member has been erased; no visit can be recorded.")
    if locked.stamps_balance + stamps < 0:
        raise ValidationError({"stamps": f"The card has only {locked.stamps_balance} stamps."})
    if locked.points_balance + points < 0:
        raise ValidationError({"points": f"The card has only {locked.points_balance} points."})

    visit = Visit(
        business_id=member.business_id,
        member=locked,
        kind=kind,
        stamps_delta=stamps,
        points_delta=points,
        amount=amount,
        occurred_at=occurred_at,
        recorded_by=recorded_by,
        source=source,
        idempotency_key=idempotency_key,
        note=note,
    )
    if idempotency_key is not None:
        try:
            with transaction.atomic():
                visit.save()
        except IntegrityError:
            # Another request with the same key committed first: answer with its visit.
            existing = _visit_by_key(member=member, key=idempotency_key)
            if existing is None:
                raise
            return existing
    else:
        visit.save()

    locked.stamps_balance += stamps
    locked.points_balance += points
    fields = ["stamps_balance", "points_balance"]
    if kind not in NOT_IN_PERSON:
        locked.visit_count += 1
        locked.last_visit_at = max(filter(None, [locked.last_visit_at, occurred_at]))
        fields += ["visit_count", "last_visit_at"]
    if kind == VisitKind.PURCHASE:
        locked.purchase_count += 1
        locked.last_purchase_at = max(filter(None, [locked.last_purchase_at, occurred_at]))
        locked.total_spent += amount or Decimal("0")
        fields += ["purchase_count", "last_purchase_at", "total_spent"]
    locked.save(update_fields=fields)
    for name in fields:
        setattr(member, name, getattr(locked, name))
    visit.member = member
    visit.replayed = False
    return visit


def _visit_by_key(*, member: Member, key: str) -> Visit | None:
    visit = Visit.objects.filter(business_id=member.business_id, idempotency_key=key).first()
    if visit is None:
        return None
    if visit.member_id != member.pk:
        raise DuplicateIdempotencyKey({"idempotency_key": "This idempotency key was already used for another member."})
    visit.replayed = True
    return visit


def members_recompute_totals(*, business: Business, member_ids: list[int] | None = None) -> int:
    """Rebuild balances and denormalised fields from the ledger, set-based (imports, demo data).

    One grouped pass over the members' visits joined back in a single ``UPDATE … FROM``: a
    correlated subquery per figure and member took most of a 100,000-row import.
    """
    qn = connection.ops.quote_name
    member, visit = Member._meta, Visit._meta

    def col(opts, name: str) -> str:
        return qn(opts.get_field(name).column)

    in_person = f"v.{col(visit, 'kind')} NOT IN ({', '.join(['%s'] * len(NOT_IN_PERSON))})"
    purchase = f"v.{col(visit, 'kind')} = %s"
    figures = {
        "stamps_balance": f"COALESCE(SUM(v.{col(visit, 'stamps_delta')}), 0)",
        "points_balance": f"COALESCE(SUM(v.{col(visit, 'points_delta')}), 0)",
        "visit_count": f"COUNT(v.{col(visit, 'id')}) FILTER (WHERE {in_person})",
        "last_visit_at": f"MAX(v.{col(visit, 'occurred_at')}) FILTER (WHERE {in_person})",
        "purchase_count": f"COUNT(v.{col(visit, 'id')}) FILTER (WHERE {purchase})",
        "last_purchase_at": f"MAX(v.{col(visit, 'occurred_at')}) FILTER (WHERE {purchase})",
        "total_spent": f"COALESCE(SUM(v.{col(visit, 'amount')}) FILTER (WHERE {purchase}), 0)",
    }
    params: list = []
    for expression in figures.values():
        params += [str(k) for k in NOT_IN_PERSON] * expression.count("NOT IN") + [
            str(VisitKind.PURCHASE)
        ] * expression.count(" = %s")
    params.append(business.pk)
    where = f"m.{col(member, 'business')} = %s"
    if member_ids is not None:
        if not member_ids:
            return 0
        where += f" AND m.{col(member, 'id')} IN ({', '.join(['%s'] * len(member_ids))})"
        params += list(member_ids)
    table = qn(member.db_table)
    sql = (
        f"UPDATE {table} SET {', '.join(f'{col(member, f)} = t.{qn(f)}' for f in figures)} "
        f"FROM (SELECT m.{col(member, 'id')} AS member_id, "
        f"{', '.join(f'{e} AS {qn(f)}' for f, e in figures.items())} "
        f"FROM {table} m LEFT JOIN {qn(visit.db_table)} v "
        f"ON v.{col(visit, 'business')} = m.{col(member, 'business')} AND v.{col(visit, 'member')} = m.{col(member, 'id')} "
        f"WHERE {where} GROUP BY m.{col(member, 'id')}) t "
        f"WHERE {table}.{col(member, 'id')} = t.member_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
