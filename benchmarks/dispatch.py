"""The dispatcher with a real Celery worker (2 processes) on Redis: deliveries sent per second."""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime

from .db import say
from .timing import StepTimer
from .worker import broker_flush, group_cpu_seconds, worker_start, worker_stop, worker_wait_ready

SAMPLE_TABLE = "bench_dispatch_sample"
QUIET_START, QUIET_END = dtime(8, 0), dtime(20, 30)  # 08:00–21:00 in the dispatcher, with a margin


class _Rollback(Exception):
    pass


@dataclass
class DispatchResult:
    sample: int = 0
    businesses: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    sent_span_s: float = 0.0
    claimed: int = 0
    tasks: int = 0
    dispatch_s: float = 0.0
    cancelled_at_limit: int = 0
    worker_cpu_s: float | None = None
    stopped_by_limit: bool = False
    claim_plan: list[str] = field(default_factory=list)
    inprocess: dict = field(default_factory=dict)
    worker_log: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def worker_rate(self) -> float:
        return self.sent / self.sent_span_s if self.sent_span_s else 0.0


# --- the sample ----------------------------------------------------------------------------------


def sample_prepare(cursor, *, size: int, now: datetime) -> tuple[int, int, datetime]:
    """The first ``size`` scheduled deliveries (by id) of the businesses where it is daytime now
    (the dispatcher defers SMS and WhatsApp outside 08:00–21:00 local), made due with one UPDATE:
    like the 09:00 wave of one time zone, they all share one ``scheduled_at``."""
    from django_scopes import scopes_disabled

    from members.models import Business

    with scopes_disabled():
        businesses = list(Business.objects.values_list("pk", "timezone"))
    from zoneinfo import ZoneInfo

    daytime = [pk for pk, tz in businesses if QUIET_START <= now.astimezone(ZoneInfo(tz)).time() < QUIET_END]
    cursor.execute(f"DROP TABLE IF EXISTS {SAMPLE_TABLE}")
    cursor.execute(
        f"CREATE UNLOGGED TABLE {SAMPLE_TABLE} AS SELECT id FROM notifications_delivery "  # noqa: S608
        "WHERE status = 'scheduled' AND business_id = ANY(%s) ORDER BY id LIMIT %s",
        [daytime, size],
    )
    cursor.execute(f"ALTER TABLE {SAMPLE_TABLE} ADD PRIMARY KEY (id)")
    due = now - timedelta(minutes=1)
    cursor.execute(
        f"UPDATE notifications_delivery SET scheduled_at = %s WHERE id IN (SELECT id FROM {SAMPLE_TABLE})",  # noqa: S608
        [due],
    )
    sample = cursor.rowcount
    cursor.execute(
        f"SELECT count(DISTINCT business_id) FROM notifications_delivery WHERE id IN (SELECT id FROM {SAMPLE_TABLE})"  # noqa: S608
    )
    n_businesses = cursor.fetchone()[0]
    cursor.execute("ANALYZE notifications_delivery")
    return sample, n_businesses, due


def _count(cursor, where: str, params=()) -> int:
    cursor.execute(f"SELECT count(*) FROM notifications_delivery WHERE {where}", params)  # noqa: S608
    return cursor.fetchone()[0]


def claim_explain(*, now: datetime, batch_size: int) -> list[str]:
    """EXPLAIN ANALYZE of the dispatcher's own claim query (captured from ``deliveries_claim``),
    in a transaction rolled back afterwards: nothing is claimed."""
    from django.db import connection, transaction
    from django_scopes import scopes_disabled

    from notifications.dispatcher import deliveries_claim

    captured: list = []

    def capture(execute, sql, params, many, context):
        if not captured and "SKIP LOCKED" in sql.upper():
            captured.append((sql, params))
        return execute(sql, params, many, context)

    plan: list[str] = []
    try:
        with transaction.atomic():
            with connection.execute_wrapper(capture), scopes_disabled():
                deliveries_claim(now=now, limit=batch_size)
            if captured:
                sql, params = captured[0]
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    plan = [row[0] for row in cursor.fetchall()]
            raise _Rollback
    except _Rollback:
        pass
    return plan


def inprocess_batch(*, now: datetime, batch_size: int) -> dict:
    """One batch claimed and sent in this process: where a worker's time goes (SQL by statement
    kind against Python), without Celery."""
    from django.db import connection
    from django_scopes import scopes_disabled

    from notifications.dispatcher import deliveries_claim, deliveries_send
    from winback.tenancy import business_scope

    with scopes_disabled():
        batches = deliveries_claim(now=now, limit=batch_size)
    timer = SendTimer()
    sent = 0
    start = time.perf_counter()
    with connection.execute_wrapper(timer):
        for business_id, ids in batches.items():
            with business_scope(business_id):
                sent += deliveries_send(delivery_ids=ids).sent
    seconds = time.perf_counter() - start
    sql = sum(timer.seconds.values())
    return {
        "ids": [i for ids in batches.values() for i in ids],
        "deliveries": sum(len(v) for v in batches.values()),
        "sent": sent,
        "seconds": seconds,
        "sql_s": sql,
        "python_s": seconds - sql,
        "steps": dict(sorted(timer.seconds.items(), key=lambda kv: -kv[1])[:8]),
        "calls": dict(timer.calls),
    }


class SendTimer(StepTimer):
    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            flat = " ".join(sql.split())[:160]
            head = flat.split(" WHERE ")[0]
            key = head if len(head) < 90 else head[:90] + "…"
            self.seconds[key] += time.perf_counter() - start
            self.calls[key] += 1


# --- the run -------------------------------------------------------------------------------------


def dispatch_run(
    *,
    sample_size: int,
    time_limit: float,
    concurrency: int = 2,
    batch_size: int = 500,
    ahead_batches: int = 10,
    drain_timeout: float = 300.0,
) -> DispatchResult:
    """Make a sample due, start the worker, call ``dispatch_due`` until nothing is left to claim
    (keeping ``ahead_batches`` batches queued ahead of the worker, as a beat tick would), wait
    until nothing is queued or sending, stop the worker."""
    from django.db import connection
    from django.utils import timezone

    from notifications.dispatcher import dispatch_due
    from notifications.tasks import deliveries_send_task

    result = DispatchResult()
    now = timezone.now()
    with connection.cursor() as cursor:
        result.sample, result.businesses, _ = sample_prepare(cursor, size=sample_size, now=now)
    if not result.sample:
        result.notes.append("no scheduled delivery of a business in daytime: nothing to dispatch")
        return result
    say(f"  sample: {result.sample:,} deliveries of {result.businesses} businesses where it is daytime, due now")

    result.claim_plan = claim_explain(now=timezone.now(), batch_size=batch_size)
    result.inprocess = inprocess_batch(now=timezone.now(), batch_size=batch_size)
    with connection.cursor() as cursor:  # the worker's figures leave this batch out
        cursor.execute(f"DELETE FROM {SAMPLE_TABLE} WHERE id = ANY(%s)", [result.inprocess.pop("ids")])  # noqa: S608
        result.sample -= cursor.rowcount
    say(
        f"  one batch in-process (no Celery): {result.inprocess['deliveries']} deliveries in "
        f"{result.inprocess['seconds'] * 1000:.0f} ms (SQL {result.inprocess['sql_s'] * 1000:.0f} ms)"
    )

    broker_flush()
    with tempfile.NamedTemporaryFile(prefix="winback-bench-worker-", suffix=".log", delete=False) as log:
        log_path = log.name
    result.worker_log = log_path
    proc = worker_start(concurrency=concurrency, log_path=log_path)
    try:
        worker_wait_ready(proc)
        cpu_before = group_cpu_seconds(proc.pid)
        say(f"  worker up (pid {proc.pid}, concurrency {concurrency}, log {log_path}); dispatching…")

        def enqueue(business_id: int, ids: list[int]) -> None:
            deliveries_send_task.delay(business_id=business_id, delivery_ids=ids)

        start = time.perf_counter()
        deadline = start + time_limit
        exhausted = False
        last_report = start
        with connection.cursor() as cursor:
            while True:
                inflight = _count(cursor, "status IN ('queued', 'sending')")
                if not exhausted and inflight < ahead_batches * batch_size:
                    wanted = max(1, (ahead_batches * batch_size - inflight) // batch_size)
                    d_start = time.perf_counter()
                    report = dispatch_due(
                        now=timezone.now(), enqueue=enqueue, batch_size=batch_size, max_batches=wanted
                    )
                    result.dispatch_s += time.perf_counter() - d_start
                    result.claimed += report.claimed
                    result.tasks += report.batches
                    if not report.claimed:
                        exhausted = True
                    inflight += report.claimed
                if exhausted and inflight == 0:
                    break
                moment = time.perf_counter()
                if not exhausted and moment > deadline:
                    cursor.execute(
                        "UPDATE notifications_delivery SET status = 'cancelled', updated_at = now(), "  # noqa: S608
                        f"last_error = 'benchmark time limit' WHERE status = 'scheduled' AND scheduled_at <= now() "
                        f"AND id IN (SELECT id FROM {SAMPLE_TABLE})"
                    )
                    result.cancelled_at_limit = cursor.rowcount
                    result.stopped_by_limit = True
                    exhausted = True
                    say(f"  time limit: {result.cancelled_at_limit:,} deliveries not yet claimed cancelled")
                if moment > deadline + drain_timeout:
                    result.notes.append(f"{inflight} deliveries still queued or sending after the drain timeout")
                    break
                if moment - last_report >= 10:
                    last_report = moment
                    say(f"    {moment - start:5.0f} s: {result.claimed:,} claimed, {inflight:,} queued or sending")
                time.sleep(0.2)
        result.seconds = time.perf_counter() - start
        result.worker_cpu_s = group_cpu_seconds(proc.pid) - cpu_before
    finally:
        worker_stop(proc)
        broker_flush()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.status, count(*), min(d.sent_at), max(d.sent_at) FROM notifications_delivery d "  # noqa: S608
            f"JOIN {SAMPLE_TABLE} s ON s.id = d.id GROUP BY d.status ORDER BY 2 DESC"
        )
        first, last = None, None
        for status, n, lo, hi in cursor.fetchall():
            result.statuses[status] = n
            if status == "sent":
                result.sent, first, last = n, lo, hi
        if first and last:
            result.sent_span_s = (last - first).total_seconds()
        cursor.execute(f"DROP TABLE {SAMPLE_TABLE}")
    return result


# --- the dispatcher alone: ``python -m benchmarks.dispatch`` ----------------------------------------


def _cancel_leftovers(cursor) -> int:
    cursor.execute(
        "UPDATE notifications_delivery SET status = 'cancelled', updated_at = now(), "  # noqa: S608
        f"last_error = 'benchmark leftover' WHERE status = 'scheduled' AND id IN (SELECT id FROM {SAMPLE_TABLE})"
    )
    return cursor.rowcount


def _inprocess_print(label: str, ip: dict) -> None:
    n = max(ip["deliveries"], 1)
    say(
        f"  {label}: {ip['deliveries']} deliveries, {ip['sent']} sent in {ip['seconds'] * 1000:.0f} ms "
        f"= {ip['seconds'] / n * 1e6:,.0f} µs per delivery (SQL {ip['sql_s'] * 1000:.0f} ms = "
        f"{ip['sql_s'] / n * 1e6:,.0f} µs, Python {ip['python_s'] * 1000:.0f} ms = {ip['python_s'] / n * 1e6:,.0f} µs)"
    )
    for step, seconds in ip["steps"].items():
        say(f"    {seconds * 1000:7.1f} ms  {ip['calls'].get(step, 0):3d}×  {step}")


def main(argv: list[str] | None = None) -> int:
    """Time the dispatcher on the deliveries a ``benchmarks.run`` left in winback_bench (no dataset
    generation, no nights): in-process batches with the SQL/Python split (and a cProfile), then,
    unless ``--inprocess-only``, the real 2-process Celery worker."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.dispatch", description=main.__doc__)
    p.add_argument("--sample", type=int, default=100_000, help="deliveries made due for the worker")
    p.add_argument("--seconds", type=float, default=60.0, help="stop claiming after this long")
    p.add_argument("--batches", type=int, default=3, help="in-process batches of 500 timed before the worker")
    p.add_argument("--profile", type=int, default=0, help="cProfile one more batch; print this many functions")
    p.add_argument("--inprocess-only", action="store_true", help="no Celery worker")
    p.add_argument("--chunk", type=int, default=0, help="a what-if: the dispatcher's CHUNK for the in-process batches")
    args = p.parse_args(argv)

    from . import db

    db.environment_set()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from notifications import dispatcher

    call_command("migrate", verbosity=0, interactive=False)  # the schema the code expects, as benchmarks.run

    default_chunk = dispatcher.send.CHUNK
    if args.chunk:
        dispatcher.send.CHUNK = args.chunk
    say(f"in-process batches with CHUNK = {dispatcher.send.CHUNK}")
    batch = 500
    with connection.cursor() as cursor:
        size = batch * (args.batches + (1 if args.profile else 0))
        sample, businesses, _ = sample_prepare(cursor, size=size, now=timezone.now())
    if not sample:
        say("no scheduled delivery of a business in daytime in winback_bench: run benchmarks.run first")
        return 1
    say(f"in-process: {sample:,} deliveries of {businesses} businesses made due")
    for i in range(args.batches):
        _inprocess_print(f"batch {i + 1}", inprocess_batch(now=timezone.now(), batch_size=batch))
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        ip = inprocess_batch(now=timezone.now(), batch_size=batch)
        profiler.disable()
        _inprocess_print("profiled batch (cProfile inflates Python)", ip)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    with connection.cursor() as cursor:
        _cancel_leftovers(cursor)
        cursor.execute(f"DROP TABLE {SAMPLE_TABLE}")
    if args.inprocess_only:
        return 0
    dispatcher.send.CHUNK = default_chunk  # the worker runs the code as it is

    say("worker:")
    d = dispatch_run(sample_size=args.sample, time_limit=args.seconds)
    _inprocess_print("in-process batch before the worker", d.inprocess)
    say(
        f"  dispatcher, 2 workers: {d.sent:,} sent in {d.seconds:.1f} s = {d.rate:,.0f}/s "
        f"(first to last sent_at: {d.worker_rate:,.0f}/s); {d.statuses}"
    )
    if d.sent:
        say(
            f"  worker CPU {d.worker_cpu_s or 0:.1f} s = {(d.worker_cpu_s or 0) / d.sent * 1e6:,.0f} µs per delivery; "
            f"dispatch_due {d.dispatch_s:.1f} s = {d.dispatch_s / max(d.claimed, 1) * 1e6:,.0f} µs per delivery "
            f"({d.tasks} tasks)"
        )
    for note in d.notes:
        say(f"  note: {note}")
    say("  the claim's plan:")
    for line in d.claim_plan:
        say(f"    {line}")
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
