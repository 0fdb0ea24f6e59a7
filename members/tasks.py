"""Celery envelopes for members: ids in, one plain function called."""

from celery import shared_task

from winback.tenancy import TenantTask

from . import importing


@shared_task(base=TenantTask, name="members.import_job_run", ignore_result=True, acks_late=True)
def import_job_run_task(*, business_id: int, job_id: int) -> str:
    return importing.import_job_run(job_id=job_id)
