"""``python -m benchmarks.imports``: a 100,000-row members CSV imported through the real Celery
worker on PostgreSQL and Redis (the benchmark's own database), timed end to end."""

from __future__ import annotations

FIRST = ["Aisha", "Ravi", "Mei", "Daniel", "Siti", "Arjun", "Li Na", "Omar", "Priya", "Wei"]
LAST = ["Tan", "Kumar", "Lim", "Wong", "Abdullah", "Nair", "Chen", "Ismail", "Raj", "Ong"]
HEADER = "card_code,first_name,last_name,phone,email,birthday,joined_on,consent_sms,consent_email,stamps,points\n"


def members_csv_make(rows: int, *, bad: dict[int, str] | None = None) -> str:
    """A members file of ``rows`` valid rows (Malaysian mobiles, half with an email); ``bad`` maps
    a 1-based row number to a line that replaces it."""
    bad = bad or {}
    lines = [HEADER]
    for i in range(1, rows + 1):
        if i in bad:
            lines.append(bad[i] + "\n")
            continue
        email = f"m{i}@example.com" if i % 2 else ""
        lines.append(
            f"C{i:07d},{FIRST[i % 10]},{LAST[i // 10 % 10]},+6012{i:07d},{email},"
            f"19{60 + i % 40}-0{1 + i % 9}-1{i % 10},2024-0{1 + i % 9}-2{i % 8},{'yes' if i % 3 else 'no'},"
            f"{'yes' if i % 2 else 'no'},{i % 10},{i % 100}\n"
        )
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os
    import subprocess
    import sys
    import time

    p = argparse.ArgumentParser(prog="python -m benchmarks.imports", description=__doc__)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument(
        "--bad-row", type=int, default=0, help="replace this row with a bad phone (then nothing is imported)"
    )
    args = p.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL: this times the real worker on the real broker")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "winback.settings")
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import Client
    from django_scopes import scopes_disabled

    from benchmarks.db import loadavg, say
    from members import services
    from members.models import Business, ImportJob, Member, Membership

    call_command("migrate", verbosity=0)
    stamp = int(time.time())
    with scopes_disabled():
        user = services.user_get_or_create(email=f"bench-import-{stamp}@example.com", password="pw-Secret-123")
        business = Business.objects.create(
            name="Import bench", slug=f"import-bench-{stamp}", timezone="Asia/Kuala_Lumpur", country="MY",
            currency="MYR", program_type="both", stamps_per_card=10,
        )  # fmt: skip
        Membership.objects.create(business=business, user=user, role="owner")
    bad = {args.bad_row: "X1,Ann,Tan,not-a-phone"} if args.bad_row else None
    text = members_csv_make(args.rows, bad=bad)
    say(f"members file: {args.rows:,} rows, {len(text.encode()) / 1e6:.1f} MB; load {loadavg():.1f}")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "winback", "worker", "--pool=solo", "--loglevel=WARNING"],
        env={**os.environ, "DEBUG": "false"},
    )
    try:
        time.sleep(8)  # the worker connects to the broker
        client = Client()
        client.force_login(user, backend="members.auth.EmailBackend")
        start = time.monotonic()
        upload = SimpleUploadedFile("big.csv", text.encode(), content_type="text/csv")
        response = client.post("/members/import/", {"members_file": upload})
        answered = time.monotonic() - start
        with scopes_disabled():
            job = ImportJob.objects.get(business=business)
            say(f"  the upload answered {response.status_code} in {answered:.1f} s; the job is {job.status}")
            last = None
            while True:
                job = ImportJob.objects.defer("members_csv", "visits_csv").get(pk=job.pk)
                if (job.status, job.percent) != last:
                    say(f"  {time.monotonic() - start:6.1f} s  {job.status:8} {job.percent:3}%  "
                        f"checked {job.rows_checked:,}  written {job.rows_done:,}")  # fmt: skip
                    last = (job.status, job.percent)
                if job.finished:
                    break
                time.sleep(0.5)
            total = (job.finished_at - job.created_at).total_seconds()
            run = (job.finished_at - job.started_at).total_seconds()
            members = Member.objects.filter(business=business).count()
        say(f"{job.status}: {members:,} members in the database; upload to finish {total:.1f} s, "
            f"the worker's run {run:.1f} s; errors {job.errors[:3]}; load {loadavg():.1f}")  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(30)
        with scopes_disabled():
            business.delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
