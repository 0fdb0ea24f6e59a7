from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from members.importing import ImportFailed, members_import
from members.models import Business
from winback.tenancy import business_scope


class Command(BaseCommand):
    help = "Import members (and optionally their past visits) from CSV; nothing is imported if a row is bad."

    def add_arguments(self, parser):
        parser.add_argument("members_csv", type=Path)
        parser.add_argument("--business", required=True, help="the business's slug")
        parser.add_argument("--visits", type=Path, help="a CSV of past visits")

    def handle(self, *args, members_csv: Path, business: str, visits: Path | None, **options):
        found = Business.objects.filter(slug=business).first()
        if found is None:
            raise CommandError(f"No business with slug “{business}”.")
        try:
            members_text = members_csv.read_text(encoding="utf-8-sig")
            visits_text = visits.read_text(encoding="utf-8-sig") if visits else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read the file: {exc}") from exc
        with business_scope(found):
            try:
                report = members_import(business=found, members_csv=members_text, visits_csv=visits_text)
            except ImportFailed as exc:
                for error in exc.report.errors:
                    self.stderr.write(str(error))
                raise CommandError(
                    f"Nothing imported: {len(exc.report.errors)} bad row{'' if len(exc.report.errors) == 1 else 's'}."
                ) from exc
        self.stdout.write(f"Imported {report.members} members and {report.visits} visits.")
