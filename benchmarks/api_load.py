"""API load benchmark: stamping (point of sale) and wallet reads (member app) at 50 concurrent
clients, against gunicorn on PostgreSQL, driven by locust in its own process.

    .venv/bin/python benchmarks/api_load.py [--users 50] [--seconds 30] [--members 5000]

It creates its own database (``winback_api_bench``), migrates and seeds it (one business, its
members with visits, one API key per simulated till, one signed-in device with a few rewards in
the wallet per simulated member), starts gunicorn, runs locust headless once per scenario, and
prints requests per second and p50/p95/p99 latency. Locust runs from its own virtualenv
(``var/locust-venv``, created on first use) so gevent is never imported beside Django.

This same file is the locustfile: imported by locust (``BENCH_SCENARIO`` = ``stamp`` or
``wallet``), it defines only the simulated users and touches nothing of Django.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
SEED_FILE = VAR / "bench-api-seed.json"
LOCUST_VENV = VAR / "locust-venv"
LOCUST_PIN = "locust==2.47.0"
DB_NAME = "winback_api_bench"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
PORT = int(os.environ.get("BENCH_API_PORT", "8097"))
TARGET_P95_MS = 50


# --- the locustfile (imported by locust only) ----------------------------------------------------

if "locust" in sys.modules and __name__ != "__main__":
    from locust import HttpUser, constant, constant_pacing, task

    _seed = json.loads(SEED_FILE.read_text())
    _scenario = os.environ.get("BENCH_SCENARIO", "stamp")
    _pace = float(os.environ.get("BENCH_PACE", "1"))
    # A till stamps, a member opens the wallet, about once a second each; 0: back to back.
    _wait = constant_pacing(_pace) if _pace > 0 else constant(0)

    if _scenario == "stamp":

        class Till(HttpUser):
            """A point-of-sale till stamping random members, each stamp with a fresh key."""

            wait_time = _wait

            def on_start(self):
                self.key = random.choice(_seed["api_keys"])  # noqa: S311 - load, not security

            @task
            def stamp(self):
                member_id = random.choice(_seed["member_ids"])  # noqa: S311
                self.client.post(
                    f"/api/v1/pos/members/{member_id}/visits/",
                    json={"stamps": 1, "amount": "4.50"},
                    headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": uuid.uuid4().hex},
                    name="POST /pos/members/{id}/visits/",
                )

    else:

        class WalletReader(HttpUser):
            """A member opening the wallet app."""

            wait_time = _wait

            def on_start(self):
                self.token = random.choice(_seed["member_tokens"])  # noqa: S311

            @task
            def wallet(self):
                self.client.get(
                    "/api/v1/member/wallet/",
                    headers={"Authorization": f"Bearer {self.token}"},
                    name="GET /member/wallet/",
                )


# --- the driver ----------------------------------------------------------------------------------


def say(*parts) -> None:
    print(*parts, flush=True)  # noqa: T201 - the benchmark's output


def bench_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "WINBACK_"))}
    env.update(
        DATABASE_URL=DATABASE_URL,
        DJANGO_SETTINGS_MODULE="winback.settings",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        CONN_MAX_AGE="600",
        # The limits are not what is measured: every simulated client would share them.
        API_RATE_POS="100000000/min",
        API_RATE_MEMBER="100000000/min",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    return env


def database_create() -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", host="127.0.0.1", port=5432, user="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{DB_NAME}"')
    conn.close()


def seed(members: int, devices: int, tills: int) -> None:
    """Runs in a child process with the benchmark's environment (Django set up here only)."""
    import django

    django.setup()
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone
    from django_scopes import scope

    from members import apiauth
    from members.models import Business, Member, RewardKind, RewardStatus, Visit, WalletReward
    from members.services import members_recompute_totals

    now = timezone.now()
    business = Business.objects.create(name="Bench Café", slug="bench", timezone="Asia/Kuala_Lumpur", country="MY")
    with scope(business=business.pk):
        rows = Member.objects.bulk_create(
            Member(
                business=business,
                first_name=f"M{i}",
                card_code=f"B{i:07d}",
                joined_on=now.date(),
                phone=f"+6012{i:07d}",
            )  # fmt: skip
            for i in range(members)
        )
        Visit.objects.bulk_create(
            Visit(
                business=business,
                member=m,
                kind="purchase",
                stamps_delta=1,
                amount=Decimal("5.00"),
                occurred_at=now - timedelta(days=d),
                source="import",
            )  # fmt: skip
            for m in rows
            for d in (3, 20, 45)
        )
        members_recompute_totals(business=business)
        tokens, keys = [], []
        for m in rows[:devices]:
            tokens.append(apiauth.member_token_issue(member=m, device_name="bench").secret)
            WalletReward.objects.bulk_create(
                WalletReward(
                    business=business,
                    member=m,
                    kind=RewardKind.FREE_ITEM,
                    title="a free coffee",
                    details={"kind": "free_item", "item": "coffee"},
                    status=status,
                    code=f"R{m.pk:07d}{n}",
                    offered_at=now,
                    claimed_at=now,
                    expires_at=now + timedelta(days=30),
                )  # fmt: skip
                for n, status in enumerate([RewardStatus.AVAILABLE] * 3 + [RewardStatus.REDEEMED] * 2)
            )
        for i in range(tills):
            keys.append(apiauth.api_key_create(business=business, name=f"till {i}").secret)
    SEED_FILE.write_text(json.dumps({"member_ids": [m.pk for m in rows], "member_tokens": tokens, "api_keys": keys}))


def locust_install() -> Path:
    binary = LOCUST_VENV / "bin" / "locust"
    if not binary.exists():
        say(f"installing {LOCUST_PIN} into {LOCUST_VENV} …")
        subprocess.run([sys.executable, "-m", "venv", str(LOCUST_VENV)], check=True)
        subprocess.run([str(LOCUST_VENV / "bin" / "pip"), "install", "--quiet", LOCUST_PIN], check=True)
    return binary


def gunicorn_start(workers: int) -> subprocess.Popen:
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "winback.wsgi", "--bind", f"127.0.0.1:{PORT}",
               "--workers", str(workers), "--worker-class", "sync", "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=bench_env())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)  # noqa: S310 - our own server
            return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def locust_run(binary: Path, scenario: str, users: int, seconds: int, pace: float) -> dict:
    prefix = VAR / f"bench-api-{scenario}"
    env = {**os.environ, "BENCH_SCENARIO": scenario, "BENCH_PACE": str(pace)}
    subprocess.run(
        [
            str(binary),
            "-f",
            str(Path(__file__).resolve()),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            f"{seconds}s",
            "--host",
            f"http://127.0.0.1:{PORT}",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    row = rows[0]
    return {
        "scenario": scenario,
        "pace_s": pace,
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": float(row["Requests/s"]),
        "p50": float(row["50%"]),
        "p95": float(row["95%"]),
        "p99": float(row["99%"]),
    }


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument(
        "--pace", type=float, default=1.0, help="seconds between one client's requests (0: back to back, saturation)"
    )
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_only:
        seed(args.members, devices=args.users, tills=args.users)
        return

    VAR.mkdir(exist_ok=True)
    binary = locust_install()
    say(f"database {DB_NAME}: create, migrate, seed {args.members} members …")
    database_create()
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=bench_env(), check=True)
    subprocess.run([python, __file__, "--seed-only", "--members", str(args.members), "--users", str(args.users)],
                   cwd=ROOT, env={**bench_env(), "PYTHONPATH": str(ROOT)}, check=True)  # fmt: skip
    say(f"gunicorn: {args.workers} sync workers on 127.0.0.1:{PORT}; locust: {args.users} users, {args.seconds} s "
        f"each, one request per user every {args.pace} s" if args.pace else " back to back")  # fmt: skip
    server = gunicorn_start(args.workers)
    try:
        results = [locust_run(binary, s, args.users, args.seconds, args.pace) for s in ("stamp", "wallet")]
    finally:
        server.terminate()
        server.wait(timeout=30)
    say("")
    say(f"{'scenario':<10} {'requests':>9} {'failures':>9} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for r in results:
        say(f"{r['scenario']:<10} {r['requests']:>9} {r['failures']:>9} {r['rps']:>8.1f} {r['p50']:>7.0f} "
            f"{r['p95']:>7.0f} {r['p99']:>7.0f}")  # fmt: skip
    (VAR / "bench-api-results.json").write_text(json.dumps(results, indent=2))
    missed = [r["scenario"] for r in results if r["p95"] >= TARGET_P95_MS or r["failures"]]
    say(f"\ntarget p95 < {TARGET_P95_MS} ms: " + ("met" if not missed else f"missed by {', '.join(missed)}"))


if __name__ == "__main__":
    main()
