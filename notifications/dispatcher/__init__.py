"""The dispatcher: claims due deliveries from the outbox and sends them through channel backends.

* ``dispatch_due`` (beat, every few seconds) returns expired leases, then claims due deliveries
  in batches with ``SELECT … FOR UPDATE SKIP LOCKED`` (status ``queued``, with a lease) and hands
  each batch to a Celery task. Several dispatchers at once never claim one delivery twice.
* ``deliveries_send`` (the task's body) re-checks each delivery — campaign still active, member
  not returned, consent still there, quiet hours in the member's time zone — then, a chunk at a
  time, marks the chunk ``sending`` (committed), calls the provider, and writes the results.
  On PostgreSQL the claim, the mark and the results are one statement each, with their
  ``DeliveryEvent`` rows, and the sends' outcomes settle in one more per batch; SQLite (tests,
  the demo) takes the ORM path to the same rows.

A worker that dies after marking a chunk ``sending`` leaves it ``sending``; when the lease
expires those deliveries become ``unconfirmed`` — counted and visible, never resent, because the
provider may have accepted them. A worker that dies before that leaves them ``queued``; they go
back to ``scheduled`` when the lease expires and are sent once.

Before a chunk's provider calls, its SMS and WhatsApp messages are reserved against the
business's monthly budget (``spend``, on ``notifications.budget``): past it a delivery falls back
to a free channel or waits for next month, as its campaign says. SMS and WhatsApp carry the send's
short link (``/m/<code>``); push and email the signed long one.

The parts: ``claim`` (leases, claims, batches to workers), ``compose`` (each message's texts and
link), ``spend`` (short codes, the budget), ``send`` (a batch's re-checks and provider calls), ``settle`` (results, deferrals, the
sends' outcomes), all on ``outbox`` (the lease, the status groups, the events). The names callers
use are re-exported here; ``CHUNK`` is not: set it on ``dispatcher.send``, where it is read.
"""

from .claim import DispatchReport, deliveries_claim, dispatch_due, leases_expire
from .compose import OPEN_LINK_MARGIN, OPEN_SALT, open_link_expires_at, open_url
from .outbox import FAILED_ANY, LEASE, PENDING_OR_SENDING, WENT_OUT
from .send import MAX_ATTEMPTS, SendReport, deliveries_send, in_quiet_hours

__all__ = [
    "FAILED_ANY",
    "LEASE",
    "MAX_ATTEMPTS",
    "OPEN_LINK_MARGIN",
    "OPEN_SALT",
    "PENDING_OR_SENDING",
    "WENT_OUT",
    "DispatchReport",
    "SendReport",
    "deliveries_claim",
    "deliveries_send",
    "dispatch_due",
    "in_quiet_hours",
    "leases_expire",
    "open_link_expires_at",
    "open_url",
]
