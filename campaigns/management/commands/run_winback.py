from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns import engine
from campaigns.models import Campaign
from members.models import Business
from winback.tenancy import business_scope


class Command(BaseCommand):
    help = (
        "Run the nightly win-back evaluation now, for one business or all (--dry-run only counts). "
        "Every business is evaluated even when one fails; failures are listed and the exit code is 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--business", help="a business slug (default: every business)")
        parser.add_argument("--date", help="the local date to evaluate, YYYY-MM-DD (default: today, local)")
        parser.add_argument("--dry-run", action="store_true", help="count per campaign; write nothing")

    def handle(self, *args, business=None, date=None, dry_run=False, **options):
        with scopes_disabled():
            businesses = Business.objects.filter(is_active=True).order_by("slug")
            if business:
                businesses = businesses.filter(slug=business)
                if not businesses.exists():
                    raise CommandError(f"No business with slug “{business}”.")
            businesses = list(businesses)
        now = timezone.now()
        day = _parse_date(date) if date else None
        slugs = {b.pk: b.slug for b in businesses}
        outcomes = engine.nights_evaluate(
            pairs=[(b.pk, day or engine.local_date_of(now, b.tzinfo)) for b in businesses],
            now_fn=lambda: now,
            dry_run=dry_run,
        )
        failed = []
        for outcome in outcomes:
            slug, result = slugs[outcome.business_id], outcome.result
            if outcome.error:
                failed.append(outcome)
                self.stderr.write(f"{slug} {outcome.local_date} failed: {outcome.error}")
                continue
            if result is None:
                self.stdout.write(f"{slug} {outcome.local_date}: already evaluated; nothing written.")
                continue
            with business_scope(outcome.business_id):
                names = dict(Campaign.objects.filter(pk__in=result.stats).values_list("pk", "name"))
            verb = "would send" if dry_run else "sent"
            self.stdout.write(
                f"{slug} {outcome.local_date}: {len(result.stats)} campaign{'' if len(result.stats) == 1 else 's'}"
            )
            for campaign_id, s in sorted(result.stats.items()):
                self.stdout.write(
                    f"  campaign {campaign_id} “{names.get(campaign_id, '?')}”: selected {s['selected']}, "
                    f"{verb} {s['sends']}, control {s['control']}, capped {s['capped']}"
                    + ("" if dry_run else f", deliveries {s['deliveries']}, rewards {s['rewards']}")
                )
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(businesses)} businesses failed: "
                + ", ".join(f"{slugs[o.business_id]} ({o.local_date})" for o in failed)
            )


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date “{value}” is not YYYY-MM-DD.") from None
