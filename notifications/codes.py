"""Sending a sign-in code through the channels: one attempt per call, the task retries.

``members.apiauth.code_request`` makes the code and queues it (``members.tasks.code_send_task``);
this sends it on the member's SMS or email channel, as every other message goes out.
"""

from __future__ import annotations

from datetime import datetime

from django.views.decorators.debug import sensitive_variables

from members.models import CodeDelivery, MemberStatus, OneTimeCode

from .channels import Message, PermanentSendError, TransientSendError, backend_for

# Provider calls per code: the retries (10, 20, 40 s apart) end well inside its ten minutes, and
# their countdowns stay far below the broker's visibility timeout (SPEC §6: no long ETA tasks).
CODE_SEND_ATTEMPTS = 4
CODE_SEND_BACKOFF = 10  # seconds before the first retry, doubling


def code_send_retry_in(*, retries: int, retry_after: float | None = None) -> float:
    """Seconds before the next try: exponential backoff, or the provider's Retry-After if longer,
    never past two minutes."""
    return min(max(CODE_SEND_BACKOFF * 2**retries, retry_after or 0), 120)


@sensitive_variables("code")
def code_send(*, code_id: int, code: str, now: datetime) -> str:
    """One attempt to send a queued sign-in code (the body of the ``members.code_send`` task);
    returns the code's delivery status afterwards.

    Sent: ``sent``. A permanent refusal, or a transient one on the last attempt, marks it
    ``failed`` with the reason. A transient error before that leaves it ``queued`` with the reason
    and is raised again, for the task to retry. A code no longer queued (a redelivered task), or
    expired before it could go out, is not sent.
    """
    row = OneTimeCode.objects.select_related("business", "member").filter(pk=code_id).first()
    if row is None or row.delivery_status != CodeDelivery.QUEUED:
        return row.delivery_status if row else ""
    if row.expires_at <= now:
        return _code_delivery_set(row, CodeDelivery.FAILED, error="expired before it could be sent")
    to = (row.member.phone if row.channel == "sms" else row.member.email) if row.member else ""
    if not to or row.member.status != MemberStatus.ACTIVE:
        return _code_delivery_set(row, CodeDelivery.FAILED, error="the member has no such phone or email any more")
    # Count the attempt first, conditionally: a second copy of the task running at the same moment
    # (a redelivery) finds the count moved on and sends nothing.
    attempt = row.delivery_attempts + 1
    if not OneTimeCode.objects.filter(
        pk=row.pk, delivery_status=CodeDelivery.QUEUED, delivery_attempts=row.delivery_attempts
    ).update(delivery_attempts=attempt):
        return ""
    business = row.business
    minutes = int((row.expires_at - row.created_at).total_seconds() // 60)  # its own lifetime
    message = Message(
        delivery_id=None,
        business_id=business.pk,
        member_id=row.member_id,
        channel=row.channel,
        to=to,
        title=f"Your {business.name} sign-in code",
        body=f"{code} is your {business.name} sign-in code. It expires in {minutes} minutes.",
        extra={"purpose": "sign_in"},
        secret=code,
    )
    backend = backend_for(row.channel, business=business)
    try:
        backend.send(message)
        backend.flush()
    except PermanentSendError as exc:
        return _code_delivery_set(row, CodeDelivery.FAILED, error=exc.reason)
    except TransientSendError as exc:
        if attempt >= CODE_SEND_ATTEMPTS:
            return _code_delivery_set(row, CodeDelivery.FAILED, error=f"gave up after {attempt} attempts: {exc.reason}")
        _code_delivery_set(row, CodeDelivery.QUEUED, error=exc.reason)
        raise
    return _code_delivery_set(row, CodeDelivery.SENT, sent_at=now)


def _code_delivery_set(row: OneTimeCode, status: str, *, error: str = "", sent_at: datetime | None = None) -> str:
    # Every move is out of ``queued``: a code another copy of the task settled stays as it is.
    OneTimeCode.objects.filter(pk=row.pk, delivery_status=CodeDelivery.QUEUED).update(
        delivery_status=status, delivery_error=error[:500], sent_at=sent_at
    )
    return status
