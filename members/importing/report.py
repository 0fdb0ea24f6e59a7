"""What an import tells: the rows that were wrong, what it imported, how far it is."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RowError:
    file: str
    line: int
    message: str
    field: str = ""

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.message}"


@dataclass
class ImportReport:
    members: int = 0
    visits: int = 0
    suppressed: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFailed(Exception):
    def __init__(self, report: ImportReport):
        self.report = report
        super().__init__("\n".join(str(e) for e in report.errors))


class Progress:
    """Told how far an import is; the plain one (the command, tests) listens to nothing."""

    def checked(self, rows: int) -> None:
        pass

    def written(self, rows: int) -> None:
        pass

    def succeeded(self, report: ImportReport) -> None:
        """Called inside the import's transaction, after the last write."""
