"""``python -m benchmarks.pages``: time the campaign page and the dashboard on the benchmark
database after its nights (``make bench`` first). Median and worst of 15 requests each, through
Django's full request stack (middleware, tenancy, templates), for the business with the most sends
and its campaign with the most sends. Prints the figures; ``--docs`` appends them to
docs/benchmarks.md."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from . import db
from .db import say

TARGET_MS = 300.0
RUNS = 15


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pages", description=__doc__)
    parser.add_argument("--docs", action="store_true", help="append the figures to docs/benchmarks.md")
    args = parser.parse_args(argv)
    db.environment_set()
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_scopes import scopes_disabled

    from campaigns.models import CampaignSend
    from members.models import Business, Member, Membership
    from members.services import user_get_or_create

    with scopes_disabled():
        top = CampaignSend.objects.values("campaign_id", "business_id").annotate(n=Count("pk")).order_by("-n").first()
        if top is None:
            say("no sends in the benchmark database: run `make bench` first")
            return 1
        business = Business.objects.get(pk=top["business_id"])
        members = Member.objects.filter(business=business).count()
        user = user_get_or_create(email="bench-owner@winback.example", password="bench-owner-pass-1")
        Membership.objects.get_or_create(business=business, user=user, defaults={"role": "owner"})
    client = Client()
    client.force_login(user, backend="members.auth.EmailBackend")
    session = client.session
    session["winback_business_id"] = business.pk
    session.save()

    figures = []
    for label, url in (
        (f"campaign page (campaign {top['campaign_id']}, {top['n']:,} sends)", f"/campaigns/{top['campaign_id']}/"),
        (f"dashboard ({business.name}, {members:,} members)", "/dashboard/"),
    ):
        assert client.get(url).status_code == 200  # warm
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        median, worst = statistics.median(times), max(times)
        verdict = "met" if median < TARGET_MS else "missed"
        figures.append((label, median, worst, len(queries.captured_queries), verdict))
        say(f"  {label}: median {median:.0f} ms, worst {worst:.0f} ms, {len(queries.captured_queries)} queries "
            f"(target < {TARGET_MS:.0f} ms: {verdict})")  # fmt: skip
    if args.docs:
        lines = ["", f"## Pages on the benchmark dataset (`python -m benchmarks.pages`, load {db.loadavg():.1f})", "",
                 "| page | median | worst of 15 | queries | target < 300 ms |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
        lines += [f"| {label} | {m:.0f} ms | {w:.0f} ms | {q} | **{v}** |" for label, m, w, q, v in figures]
        path = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
        with path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
