"""The machine, the summary on stdout and ``docs/benchmarks.md``."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from .db import say

BASE_DIR = Path(__file__).resolve().parent.parent
DOC = BASE_DIR / "docs" / "benchmarks.md"
OTHER_START = "<!-- other-benchmarks:start (kept as is when make bench rewrites this file) -->"
OTHER_END = "<!-- other-benchmarks:end -->"
OTHER_DEFAULT = """## API and results benchmarks

_To be filled by the API and results issues (request latency of the member and owner APIs, the
results page's aggregates over a night's sends). Keep them between these markers: `make bench`
rewrites the rest of this file and leaves this section as it is._
"""

TARGETS = {
    "first_night_s": 60.0,
    "floor_ratio": 2.0,
    "steady_night_s": 10.0,
    "dispatch_rate": 2000.0,
}


def machine(cursor) -> dict:
    info: dict = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    info["cpus"] = os.cpu_count()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?"
        )
    except OSError:
        info["cpu"] = "?"
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kb = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemTotal:")))
        info["memory"] = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        info["memory"] = "?"
    cursor.execute("SHOW server_version")
    info["postgresql"] = cursor.fetchone()[0]
    settings = {}
    for name in ("shared_buffers", "work_mem", "max_wal_size", "synchronous_commit", "jit"):
        cursor.execute(f"SHOW {name}")
        settings[name] = cursor.fetchone()[0]
    info["pg_settings"] = settings
    info["python"] = platform.python_version()
    try:
        import django
        import redis

        from .db import REDIS_URL

        info["django"] = django.get_version()
        info["redis"] = redis.Redis.from_url(REDIS_URL).info("server").get("redis_version", "?")
    except Exception:  # noqa: BLE001 - informational only
        info.setdefault("redis", "?")
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        info["commit"] = f"{head}{' + uncommitted changes' if dirty else ''}" if head else "?"
    except OSError:
        info["commit"] = "?"
    return info


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def figures(r: dict) -> list[tuple[str, str, str, str]]:
    """(figure, measured, target, verdict) rows shared by stdout and the document."""
    rows = []
    first, floor, steady = r.get("first_night"), r.get("floor"), r.get("steady_night")
    if first:
        rows.append(
            (
                "First night (D), every business, `business_evaluate` one after the other in one process",
                f"{_s(first.seconds)} — {first.sends:,} sends, {first.deliveries:,} deliveries",
                "< 60 s",
                _verdict(first.seconds < TARGETS["first_night_s"]),
            )
        )
    if floor:
        runs = (
            "measured once"
            if len(floor.seconds) == 1
            else f"median of {len(floor.seconds)}: " + ", ".join(f"{s:.1f}" for s in floor.seconds) + " s"
        )
        rows.append(
            (
                "Floor: one hand-written `INSERT … SELECT` of the same pairs",
                f"{_s(floor.median)} — {floor.rows:,} rows ({runs})",
                "—",
                "—",
            )
        )
    if first and floor:
        ratio = first.seconds / floor.median if floor.median else float("inf")
        rows.append(
            ("Engine (one process) / floor", f"{ratio:.2f}×", "≤ 2×", _verdict(ratio <= TARGETS["floor_ratio"]))
        )
    if steady:
        rows.append(
            (
                "Next night (D+1), steady state, one process",
                f"{_s(steady.seconds)} — {steady.sends:,} sends, {steady.deliveries:,} deliveries",
                "< 10 s",
                _verdict(steady.seconds < TARGETS["steady_night_s"]),
            )
        )
    for key, floor_key in (("first_night_celery", True), ("steady_night_celery", False)):
        night = r.get(key)
        if not night:
            continue
        target = TARGETS["first_night_s"] if floor_key else TARGETS["steady_night_s"]
        rows.append(
            (
                f"{night.label}: the tick's tasks (20 businesses each) on a Celery worker with 2 processes",
                f"{_s(night.seconds)} — {night.sends:,} sends, {night.deliveries:,} deliveries",
                f"< {target:.0f} s",
                _verdict(night.seconds < target),
            )
        )
        if floor_key and floor:
            ratio = night.seconds / floor.median if floor.median else float("inf")
            rows.append(
                (
                    "Engine (Celery, 2 processes) / floor",
                    f"{ratio:.2f}×",
                    "≤ 2×",
                    _verdict(ratio <= TARGETS["floor_ratio"]),
                )
            )
    d = r.get("dispatch")
    if d and d.sent:
        rows.append(
            (
                "Dispatcher → Celery (2 worker processes), deliveries sent per second",
                f"{d.rate:,.0f}/s — {d.sent:,} sent in {_s(d.seconds)}",
                "≥ 2,000/s",
                _verdict(d.rate >= TARGETS["dispatch_rate"]),
            )
        )
    return rows


def summary(r: dict) -> None:
    say("")
    say("=" * 100)
    say("Summary")
    for figure, measured, target, verdict in figures(r):
        say(f"  {figure}\n      {measured}   target {target}   {verdict.strip('*')}")
    check = r.get("floor_check")
    if check:
        say(
            f"  pairs: floor {check['floor']:,}, engine {check['engine']:,}, "
            f"floor-only {check['missing']:,}, engine-only {check['extra']:,}"
        )
    say("=" * 100)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _steps(night) -> list[str]:
    rows = []
    for step, seconds in night.steps.items():
        calls = night.calls.get(step, "")
        share = seconds / night.seconds if night.seconds else 0
        rows.append([step, _s(seconds), f"{share:.0%}", f"{calls:,}" if calls != "" else ""])
    return _table(["step", "time", "share", "statements"], rows)


def _other_section(path: Path) -> str:
    if path.exists():
        text = path.read_text()
        if OTHER_START in text and OTHER_END in text:
            return text[text.index(OTHER_START) : text.index(OTHER_END) + len(OTHER_END)]
    return f"{OTHER_START}\n{OTHER_DEFAULT}{OTHER_END}"


def document(r: dict, path: Path = DOC) -> None:
    m, ds, args = r["machine"], r["dataset"], r["args"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m benchmarks.run {args}`) on {m['date']}, commit {m['commit']}.",
        "Run by hand, never in CI: it builds its own database `winback_bench` (PostgreSQL) and uses Redis",
        "database 14. Targets and the floors they come from: `../shared/PERF.md`.",
        "",
        "## Machine",
        "",
        *_table(
            ["", ""],
            [
                ["CPU", f"{m['cpus']} × {m['cpu']}"],
                ["memory", m["memory"]],
                [
                    "PostgreSQL",
                    f"{m['postgresql']} ({', '.join(f'{k} {v}' for k, v in m['pg_settings'].items())})"
                    + (f"; this run with PGOPTIONS `{r['pg_options']}`" if r.get("pg_options") else ""),
                ],
                ["Redis", m.get("redis", "?")],
                ["Python / Django", f"{m['python']} / {m.get('django', '?')}"],
            ],
        ),
        "",
        "## Dataset",
        "",
        *_table(
            ["", ""],
            [
                [
                    "businesses",
                    f"{ds['businesses']:,} in {ds['time_zones']} time zones (Asia/Kuala_Lumpur, "
                    "America/New_York, Europe/London, Pacific/Auckland, America/Santiago, …), no frequency cap",
                ],
                [
                    "members",
                    f"{ds['members']:,} ({ds['sms_reachable']:,} with a phone and SMS consent, "
                    f"{ds['with_email']:,} with an email, {ds['never_purchased']:,} never purchased)",
                ],
                ["visits", f"{ds['visits']:,} over two years ({ds['purchases'] / max(ds['visits'], 1):.0%} purchases)"],
                [
                    "campaigns",
                    f"{ds['campaigns']:,} active (thresholds 14/30/60/90, max sends 1–3, SMS; every fifth SMS + email)",
                ],
                ["generation", r["generation"]],
            ],
        ),
        "",
        "## Results",
        "",
        *_table(["figure", "measured", "target", ""], [list(row) for row in figures(r)]),
        "",
    ]
    first, floor, steady = r.get("first_night"), r.get("floor"), r.get("steady_night")
    notes = []
    if first:
        notes.append(
            f"- D is the coming local date of each business (its next midnight), evaluated with `now` one "
            f"minute after that midnight; D+1 the date after. {first.evaluated:,} businesses evaluated one "
            "after the other in one process, each inside `business_scope`."
        )
    check = r.get("floor_check")
    if check:
        same = check["missing"] == 0 and check["extra"] == 0
        notes.append(
            f"- Same pairs: the floor wrote {check['floor']:,} rows, the engine {check['engine']:,} sends; the floor's "
            "selection compared with the engine's sends by `EXCEPT` both ways: "
            f"{'identical (campaign, member) sets' if same else 'the sets differ'} "
            f"({check['missing']:,} only in the floor, {check['extra']:,} only in the engine)."
        )
    if floor:
        notes.append(
            "- The floor writes into `bench_floor_send`, `CREATE TABLE … (LIKE campaigns_campaignsend "
            "INCLUDING ALL)` (same columns, identity, checks and indexes, no foreign key), rows "
            "ordered by member id, `ON CONFLICT DO NOTHING`, autocommit (the commit is inside the time), "
            "after a `CHECKPOINT`, on an empty table, before the engine's night. It writes sends only; "
            "the engine also writes each send's deliveries (and rewards, none here). "
            + (
                "Measured once (about a minute a run; `--floor-runs N` for a median)."
                if len(floor.seconds) == 1
                else f"Median of {len(floor.seconds)} runs."
            )
        )
        if floor.pg:
            pg = floor.pg[len(floor.pg) // 2]
            notes.append(
                f"- One floor run wrote {pg['wal_mb']:,.0f} MB of WAL, with {pg['checkpoints']} checkpoint(s) and "
                f"{pg['backend_buffers']:,} buffers written out by the backend itself (shared_buffers is "
                f"{r['machine']['pg_settings'].get('shared_buffers', '?')})."
            )
    sel = r.get("selection")
    if sel:
        notes.append(f"- The floor's selection alone (`SELECT count(*)`, no write): {_s(sel[0])} for {sel[1]:,} pairs.")
    for variant in r.get("floor_variants", []):
        notes.append(
            f"- Floor variant, {variant.label}: {_s(variant.median)} "
            f"({'one run' if len(variant.seconds) == 1 else f'median of {len(variant.seconds)}'}), "
            f"{variant.rows:,} rows" + (f", WAL {variant.pg[-1]['wal_mb']:,.0f} MB." if variant.pg else ".")
        )
    celery_check = r.get("floor_check_celery")
    if celery_check:
        same = celery_check["missing"] == 0 and celery_check["extra"] == 0
        notes.append(
            "- The Celery nights: the one-process night's rows were deleted, the same nights evaluated again by a "
            "real worker (`celery -A winback worker --concurrency 2`, Redis), as the evaluation tick fans out in "
            "production, timed from the first task sent until every business's run row is committed. Same pairs "
            f"as the floor: {'identical' if same else 'the sets differ'} ({celery_check['missing']:,} only in the "
            f"floor, {celery_check['extra']:,} only in the engine)."
        )
    for night in (first, r.get("first_night_celery"), steady, r.get("steady_night_celery")):
        if night and night.pg:
            notes.append(
                f"- {night.label}: {night.pg['wal_mb']:,.0f} MB of WAL, {night.pg['checkpoints']} checkpoint(s), "
                f"{night.pg['backend_buffers']:,} buffers written by the backend."
            )
    load = r.get("load", {})
    if load:
        notes.append(
            "- Load average (1 min) before → after each phase: "
            + "; ".join(f"{phase} {a:.1f} → {b:.1f}" for phase, (a, b) in load.items())
            + f" ({r['machine']['cpus']} CPUs). Above the CPU count, something else was running: the figures are "
            "then pessimistic."
        )
    if r.get("vacuum_s") is not None:
        notes.append(
            f"- Between the nights: `VACUUM (ANALYZE)` of the send and delivery tables ({_s(r['vacuum_s'])}, "
            "not counted), as autovacuum would have done in the day between."
        )
    lines += notes + [""]
    for night in (first, steady):
        if not night:
            continue
        lines += [
            f"### {night.label}: where the time goes",
            "",
            "Statement times from `connection.execute_wrapper`, COMMIT timed around the connection's commit.",
            "",
            *_steps(night),
            "",
        ]
        if night.slowest:
            lines += [
                "Slowest businesses: "
                + "; ".join(f"#{pk} ({tz}, {sel:,} pairs) {_s(s)}" for s, pk, tz, sel in night.slowest)
                + ".",
                "",
            ]
    d = r.get("dispatch")
    if d:
        lines += ["## Dispatcher", ""]
        if d.sample:
            lines += [
                f"- Sample: {d.sample:,} scheduled deliveries of the first night from {d.businesses} businesses where "
                "it was daytime (SMS and WhatsApp wait for 08:00–21:00 local), made due with one UPDATE, all at "
                "the same `scheduled_at` like one time zone's 09:00 wave.",
                "- A real worker: `celery -A winback worker --concurrency 2 -Q celery` on Redis; this process calls "
                f"`dispatch_due(batch_size=500)` and keeps ≤ 10 batches queued ahead of the worker; {d.tasks:,} "
                f"tasks, {d.claimed:,} claimed; time inside `dispatch_due` (claims, their events, enqueueing): "
                f"{_s(d.dispatch_s)}, {d.dispatch_s / max(d.claimed, 1) * 1e6:,.0f} µs per delivery.",
                f"- Rate = sent ÷ wall time from the first claim until nothing is queued or sending: "
                f"**{d.rate:,.0f}/s**; between the first and the last `sent_at`: {d.worker_rate:,.0f}/s.",
                f"- Outcome of the sample: {', '.join(f'{k} {v:,}' for k, v in d.statuses.items())}"
                + (f"; {d.cancelled_at_limit:,} cancelled at the time limit" if d.stopped_by_limit else "")
                + ".",
            ]
            if d.worker_cpu_s:
                lines.append(
                    f"- Worker CPU (both pool processes and the parent): {_s(d.worker_cpu_s)}, "
                    f"{d.worker_cpu_s / max(d.sent, 1) * 1e6:,.0f} µs per delivery sent."
                )
            ip = d.inprocess
            if ip:
                lines += [
                    "",
                    f"One batch of {ip['deliveries']} sent in-process (no Celery) before the worker started: "
                    f"{ip['seconds'] * 1000:.0f} ms, SQL {ip['sql_s'] * 1000:.0f} ms, Python "
                    f"{ip['python_s'] * 1000:.0f} ms ({ip['seconds'] / max(ip['deliveries'], 1) * 1e6:,.0f} µs "
                    "per delivery). Slowest statement kinds:",
                    "",
                    *_table(
                        ["statement", "time", "calls"],
                        [[f"`{k}`", f"{v * 1000:.0f} ms", ip["calls"].get(k, "")] for k, v in ip["steps"].items()],
                    ),
                    "",
                ]
            if d.claim_plan:
                lines += [
                    "The dispatcher's claim query, `EXPLAIN (ANALYZE, BUFFERS)` with the sample due:",
                    "",
                    "```",
                    *d.claim_plan,
                    "```",
                ]
        for note in d.notes:
            lines.append(f"- {note}")
        lines.append("")
    lines += [
        _other_section(path),
        "",
        "## Running it",
        "",
        "```sh",
        "make bench                                   # full size: ~1 M members, ~10 M visits, 5,000 campaigns",
        ".venv/bin/python -m benchmarks.run --reuse   # keep the generated data (same sizes)",
        ".venv/bin/python -m benchmarks.run --members 20000 --businesses 20 --no-docs   # a quick check",
        "```",
        "",
        "Flags: `--members`, `--businesses`, `--campaigns-per-business`, `--reuse`, `--skip-dispatch`, `--pg-options`,",
        "`--floor-runs` (default 1), `--floor-variants` (the floor with the send table's foreign key, and",
        "without the single-column FK indexes), `--dispatch-sample`, `--dispatch-seconds`, `--one-process` (no Celery nights), `--no-docs`; `python -m benchmarks.dispatch` times the dispatcher alone on the data left.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    say(f"wrote {path.relative_to(BASE_DIR)}")
