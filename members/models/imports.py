"""CSV imports run in the background."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django_scopes import ScopedManager

from .tenants import Business


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One CSV upload, imported in the background all-or-nothing (``members.importing``).

    The files are kept in the row, not under MEDIA_ROOT: the web and the worker may run on
    different machines with no shared disk (docker-compose has none), the upload and its job are
    committed together (no orphan file, no job without its file), and the text is cleared once the
    job has finished, so no copy of members' personal data outlives the import. ``rows_checked``
    and ``rows_done`` are written while the import runs, on a connection of their own, so the page
    reads them before the import's transaction commits.
    """

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    members_name = models.CharField(max_length=255, blank=True)
    members_csv = models.TextField(blank=True)
    visits_name = models.CharField(max_length=255, blank=True)
    visits_csv = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    rows_checked = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    members_imported = models.PositiveIntegerField(default=0)
    visits_imported = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{file, line, field, message}]
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()  # the running worker's heartbeat (progress writes)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        indexes = [models.Index(fields=["business", "-created_at"], name="import_job_recent")]  # recent imports

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

    @property
    def percent(self) -> int:
        """How far the import is: checking every row is the first half, writing the second."""
        if self.status == ImportStatus.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(99, (self.rows_checked + self.rows_done) * 50 // self.total_rows)
