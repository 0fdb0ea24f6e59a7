"""Celery envelopes for members: ids in (or the clock read), one plain function called, a retry policy."""

from celery import shared_task
from django.utils import timezone

from notifications import codes
from notifications.channels import TransientSendError
from winback.tenancy import TenantTask

from . import importing, wallet


@shared_task(name="members.rewards_expire", ignore_result=True)
def rewards_expire_task() -> int:
    return wallet.rewards_expire(now=timezone.now())


@shared_task(
    base=TenantTask,
    bind=True,
    name="members.code_send",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=codes.CODE_SEND_ATTEMPTS - 1,
)
def code_send_task(self, *, business_id: int, code_id: int, code: str) -> str:
    """Send a sign-in code; a transient provider error retries with exponential backoff (the
    last attempt marks the code failed instead of raising)."""
    try:
        return codes.code_send(code_id=code_id, code=code, now=timezone.now())
    except TransientSendError as exc:
        raise self.retry(
            exc=exc, countdown=codes.code_send_retry_in(retries=self.request.retries, retry_after=exc.retry_after)
        ) from exc


@shared_task(base=TenantTask, name="members.import_job_run", ignore_result=True, acks_late=True)
def import_job_run_task(*, business_id: int, job_id: int) -> str:
    return importing.import_job_run(job_id=job_id)
