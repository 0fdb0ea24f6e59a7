"""``members_import``: both files checked whole, then written in one transaction, or nothing."""

from __future__ import annotations

from django.utils import timezone

from ..models import Business
from .checking import import_check
from .report import ImportFailed, ImportReport, Progress
from .writing import import_write


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
    recorded_by_id = recorded_by.pk if recorded_by is not None else None
    plan = import_check(
        business=business,
        members_csv=members_csv,
        visits_csv=visits_csv,
        now=now,
        recorded_by_id=recorded_by_id,
        progress=progress,
        report=report,
    )
    if report.errors:
        raise ImportFailed(report)
    import_write(business=business, plan=plan, now=now, recorded_by_id=recorded_by_id, progress=progress, report=report)
    return report
