"""The two CSV files as rows: their header checked, then their rows, read strictly."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from .report import ImportFailed, ImportReport, RowError

MEMBER_COLUMNS = [
    "card_code", "first_name", "last_name", "phone", "email", "birthday", "joined_on",
    "consent_push", "consent_sms", "consent_whatsapp", "consent_email", "stamps", "points",
]  # fmt: skip
VISIT_COLUMNS = ["card_code", "occurred_at", "kind", "stamps", "points", "amount"]
MEMBERS_FILE, VISITS_FILE = "members file", "visits file"
MEMBERS_REQUIRED, VISITS_REQUIRED = {"first_name"}, {"card_code", "occurred_at"}
MAX_ROWS = 200_000


def file_spec(visits: bool) -> tuple[str, list[str], set[str]]:
    """The file's name in messages, its columns and the columns it must have."""
    if visits:
        return VISITS_FILE, VISIT_COLUMNS, VISITS_REQUIRED
    return MEMBERS_FILE, MEMBER_COLUMNS, MEMBERS_REQUIRED


def records(
    text: str, name: str, columns: list[str], required: set[str], report: ImportReport
) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of one file as (line, {column: value}), after checking its header.

    The reader is strict: a quote that is never closed is an error at the line where its row
    began, not a value swallowing the rest of the file.
    """
    if "\x00" in text:
        report.errors.append(RowError(name, 1, "the file contains NUL characters; is it really a CSV file?"))
        return
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = _header(reader, name, columns, required, report)
    if header is not None:
        yield from _rows(reader, header, name, report)


def _header(reader, name: str, columns: list[str], required: set[str], report: ImportReport) -> list[str] | None:
    """The header row, lower-cased; None (with the errors reported) when it cannot be used."""
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        report.errors.append(RowError(name, 1, f"the header row is not valid CSV ({exc})"))
        return None
    if not header:
        report.errors.append(RowError(name, 1, "the file is empty; a header row is needed"))
        return None
    unknown = [h for h in header if h not in columns]
    missing = required - set(header)
    if unknown:
        report.errors.append(
            RowError(
                name,
                1,
                f"unknown column{'' if len(unknown) == 1 else 's'} {', '.join(unknown)}; allowed: {', '.join(columns)}",
            )
        )
    if missing:
        report.errors.append(
            RowError(name, 1, f"missing column{'' if len(missing) == 1 else 's'} {', '.join(sorted(missing))}")
        )
    return None if unknown or missing else header


def _rows(reader, header: list[str], name: str, report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
    """The non-blank rows after the header, values stripped; stops at the row limit."""
    rows = 0
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader cannot find where the next row starts: stop at this one.
            report.errors.append(RowError(name, line, f"this row is not valid CSV ({exc}); is a quote not closed?"))
            return
        if len(values) > len(header):
            report.errors.append(RowError(name, line, "more values than columns"))
            continue
        row = dict(zip(header, (v.strip() for v in values), strict=False))
        if not any(row.values()):
            continue
        rows += 1
        if rows > MAX_ROWS:
            report.errors.append(RowError(name, line, f"more than {MAX_ROWS:,} rows; split the file"))
            return
        yield line, row


def import_file_check(*, text: str, visits: bool = False) -> int:
    """The upload's own check (header, row limit): its number of rows, or ImportFailed."""
    report = ImportReport()
    name, columns, required = file_spec(visits)
    rows = sum(1 for _ in records(text, name, columns, required, report))
    header_or_limit = [e for e in report.errors if e.line == 1 or "rows; split" in e.message]
    if header_or_limit:
        report.errors = header_or_limit
        raise ImportFailed(report)
    return rows
