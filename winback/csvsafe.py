"""CSV that a spreadsheet opens as data: the one writer every export of the product uses.

A member can name themselves ``=HYPERLINK("http://evil.example","x")`` through the public join;
opened in Excel, LibreOffice or Google Sheets, a cell starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return is evaluated as a formula (links, DDE commands, data sent elsewhere).
OWASP's rule (CSV injection): prefix such a cell with ``'``, which spreadsheets show as text.

Only *strings* are neutralised. Numbers, dates and decimals we write ourselves (a ``-5`` stamps
adjustment, a revenue) go out as they are, so they stay numbers in the sheet: a number cannot carry
a formula. Anything a person typed reaches the export as a string and is prefixed, a name of
``-5`` included.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

# The first characters that make a spreadsheet evaluate a cell (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell_safe(value: Any) -> Any:
    """``value`` as a spreadsheet shows it literally: a string that would start a formula gets a
    leading ``'``; every other value is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose every cell passes through :func:`cell_safe`."""

    def __init__(self, file, **fmtparams):
        self._writer = csv.writer(file, **fmtparams)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([cell_safe(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(file, **fmtparams) -> SafeWriter:
    """Use instead of ``csv.writer`` for every CSV a person may open in a spreadsheet."""
    return SafeWriter(file, **fmtparams)
