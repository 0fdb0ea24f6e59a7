"""The background job of an upload: created with its files, claimed and run by one worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Q
from django.db.models.sql import UpdateQuery
from django.db.models.sql.constants import CURSOR
from django.utils import timezone

from ..models import Business, ImportJob, ImportStatus
from .files import MEMBERS_FILE
from .report import ImportFailed, ImportReport, Progress, RowError
from .service import members_import

log = logging.getLogger("members.importing")

STALE = timedelta(minutes=5)  # a running job without a heartbeat this long lost its worker


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
