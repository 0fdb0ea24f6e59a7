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

from .files import MEMBER_COLUMNS, MEMBERS_FILE, VISIT_COLUMNS, VISITS_FILE, import_file_check
from .jobs import STALE, JobProgress, import_job_create, import_job_run
from .report import ImportFailed, ImportReport, Progress, RowError
from .service import members_import

__all__ = [
    "MEMBERS_FILE",
    "MEMBER_COLUMNS",
    "STALE",
    "VISITS_FILE",
    "VISIT_COLUMNS",
    "ImportFailed",
    "ImportReport",
    "JobProgress",
    "Progress",
    "RowError",
    "import_file_check",
    "import_job_create",
    "import_job_run",
    "members_import",
]
