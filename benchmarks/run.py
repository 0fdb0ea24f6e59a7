"""``python -m benchmarks.run``: generate (or reuse) the dataset, time the first night against the
SQL floor, the steady-state night and the dispatcher, print a summary and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from datetime import UTC, datetime

from . import db
from .db import say, timed

DATASET_VERSION = 1


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument("--businesses", type=int, default=1000)
    p.add_argument("--campaigns-per-business", type=int, default=5)
    p.add_argument(
        "--visits-per-member", type=float, default=10.28, help="mean visits of a member who purchased (≈10.08 overall)"
    )
    p.add_argument("--reuse", action="store_true", help="keep the data in winback_bench if it has the same sizes")
    p.add_argument("--skip-dispatch", action="store_true", help="no Celery worker, no dispatcher figure")
    p.add_argument("--floor-runs", type=int, default=1, help="runs of the SQL floor (median reported; ~70 s each)")
    p.add_argument(
        "--floor-variants",
        action="store_true",
        help="also time the floor with the send table's FK, and without single-column FK indexes",
    )
    p.add_argument("--dispatch-sample", type=int, default=200_000, help="deliveries made due for the dispatcher")
    p.add_argument("--dispatch-seconds", type=float, default=120.0, help="stop claiming after this long")
    p.add_argument(
        "--pg-options",
        default="",
        help="PGOPTIONS for every connection of the run (a what-if, e.g. '-c jit=off'); recorded in the report",
    )
    p.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    p.add_argument(
        "--one-process", action="store_true", help="time the nights in this process only, not also through Celery"
    )
    args = p.parse_args(argv)
    if args.members < 1 or args.businesses < 1 or args.campaigns_per_business < 1:
        p.error("sizes must be positive")
    return args


def steps_print(result) -> None:
    for step, seconds in result.steps.items():
        say(f"    {seconds:8.2f} s  {step} ({result.calls.get(step, '-')} statements)")


def celery_night(plan, results: dict, *, offset_days: int, label: str, key: str) -> None:
    """Time a night again the way production runs it (the tick's tasks on a 2-process worker)."""
    from . import night

    say(f"{label} again, through Celery (2 worker processes)…")
    before = db.loadavg()
    result = night.night_run_celery(plan, offset_days=offset_days, label=label)
    results["load"][f"{label}, Celery"] = (before, db.loadavg())
    results[key] = result
    say(
        f"  {label}, Celery: {result.seconds:.1f} s, {result.sends:,} sends, {result.deliveries:,} deliveries, {result.pg}"
    )


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    db.environment_set()  # before Django is set up
    if args.pg_options:
        os.environ["PGOPTIONS"] = args.pg_options  # libpq: this process, its connections and the worker
    params = {
        "version": DATASET_VERSION,
        "members": args.members,
        "businesses": args.businesses,
        "campaigns_per_business": args.campaigns_per_business,
        "visits_per_member": args.visits_per_member,
    }
    meta = db.meta_read()
    reuse = bool(args.reuse and meta and {k: meta.get(k) for k in params} == params)
    if args.reuse and not reuse:
        say("--reuse: no finished dataset of these sizes in winback_bench; generating one")
    say(f"database {db.BENCH_DB} ({'reusing its data' if reuse else 'fresh'}), broker {db.REDIS_URL}")
    db.database_create(fresh=not reuse)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    with timed("migrate"):
        call_command("migrate", verbosity=0, interactive=False)

    results: dict = {"args": shlex.join(argv if argv is not None else sys.argv[1:]), "pg_options": args.pg_options}
    from . import dataset, night

    with connection.cursor() as cursor:
        if reuse:
            results["generation"] = (
                f"reused (generated {meta.get('generated_at', '?')} in {meta.get('seconds', 0):.0f} s)"
            )
        else:
            say("generating the dataset…")
            as_of = datetime.now(UTC).replace(microsecond=0)
            start = time.perf_counter()
            generated = dataset.generate(
                cursor,
                members=args.members,
                businesses=args.businesses,
                campaigns_per_business=args.campaigns_per_business,
                visits_per_member=args.visits_per_member,
                as_of=as_of,
            )
            seconds = time.perf_counter() - start
            db.meta_write(cursor, {**params, "generated_at": as_of.isoformat(), "seconds": seconds, "steps": generated})
            results["generation"] = f"{seconds:.0f} s, in SQL (this run)"
            say(f"  dataset generated in {seconds:.1f} s")
        night.night_tables_reset(cursor)
        results["dataset"] = dataset.sizes(cursor)

        from .report import machine

        results["machine"] = machine(cursor)

    real_now = datetime.now(UTC)
    plan = night.plan_nights(real_now)
    say(
        f"nights: {len(plan.businesses)} businesses, D = each one's coming local date "
        f"({min(plan.dates.values())} … {max(plan.dates.values())})"
    )

    load = results["load"] = {}
    # (b) The floor first, on empty send tables.
    before = db.loadavg()
    with connection.cursor() as cursor:
        due = night.cutoffs_load(cursor, plan)
        say(f"floor: {due:,} campaigns due on D")
        results["selection"] = night.selection_measure(cursor)
        say(f"  selection alone: {results['selection'][0]:.2f} s, {results['selection'][1]:,} pairs")
        if args.floor_variants:
            results["floor_variants"] = [
                night.floor_measure(
                    cursor, runs=1, variant="fk", label="with the deferred business_id FK of campaigns_campaignsend"
                ),
                night.floor_measure(
                    cursor, runs=1, variant="lean", label="without the four single-column FK indexes Django adds"
                ),
            ]
        results["floor"] = night.floor_measure(cursor, runs=max(args.floor_runs, 1))
    load["floor"] = (before, db.loadavg())

    # (a) The first night.
    say("first night (D)…")
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    before = db.loadavg()
    first = night.night_run(plan, offset_days=0, label="First night (D)")
    load["first night"] = (before, db.loadavg())
    results["first_night"] = first
    say(f"  first night: {first.seconds:.1f} s, {first.sends:,} sends, {first.deliveries:,} deliveries, {first.pg}")
    steps_print(first)
    with connection.cursor() as cursor:
        engine = night.engine_rows(cursor)
        missing, extra = night.floor_compare(cursor)
        results["floor_check"] = {"floor": results["floor"].rows, "engine": engine, "missing": missing, "extra": extra}
        if missing or extra or engine != results["floor"].rows:
            say(
                f"  WARNING: the engine's pairs differ from the floor's: {missing:,} only in the floor, "
                f"{extra:,} only in the engine"
            )
    if not args.one_process:
        # The same night the way production runs it: the tick's tasks on a worker.
        with connection.cursor() as cursor:
            night.night_tables_reset(cursor)  # only night D is there: start from the same empty tables
            cursor.execute("CHECKPOINT")
        celery_night(plan, results, offset_days=0, label="First night (D)", key="first_night_celery")
        with connection.cursor() as cursor:
            missing, extra = night.floor_compare(cursor)
            results["floor_check_celery"] = {"missing": missing, "extra": extra}
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {night.CUTOFF_TABLE}")
        with timed("VACUUM (ANALYZE) of the night's tables (not counted)") as t:
            night.night_tables_vacuum(cursor)
        results["vacuum_s"] = t.seconds
        cursor.execute("CHECKPOINT")

    # (c) The next night, steady state.
    say("next night (D+1)…")
    before = db.loadavg()
    steady = night.night_run(plan, offset_days=1, label="Next night (D+1)")
    load["next night"] = (before, db.loadavg())
    results["steady_night"] = steady
    say(f"  next night: {steady.seconds:.1f} s, {steady.sends:,} sends, {steady.deliveries:,} deliveries, {steady.pg}")
    steps_print(steady)
    if not args.one_process:
        with transaction.atomic(), connection.cursor() as cursor:
            night.night_remove(cursor, plan, offset_days=1)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) campaigns_campaignsend, notifications_delivery")
        celery_night(plan, results, offset_days=1, label="Next night (D+1)", key="steady_night_celery")

    if not args.skip_dispatch:
        from .dispatch import dispatch_run

        say("dispatcher…")
        before = db.loadavg()
        results["dispatch"] = dispatch_run(sample_size=args.dispatch_sample, time_limit=args.dispatch_seconds)
        load["dispatcher"] = (before, db.loadavg())
        d = results["dispatch"]
        say(f"  dispatcher: {d.sent:,} sent in {d.seconds:.1f} s = {d.rate:,.0f}/s ({d.statuses})")

    from .report import document, summary

    summary(results)
    if not args.no_docs:
        document(results)
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
