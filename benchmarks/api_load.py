"""API load benchmark: stamping (point of sale) and wallet reads (member app) at 50 concurrent
clients, against gunicorn on PostgreSQL.

    .venv/bin/python benchmarks/api_load.py [--users 50] [--seconds 30] [--members 5000] [--pace 1]
                                            [--generator threads|locust]

It creates its own database (``winback_api_bench``), migrates and seeds it (one business, its
members with visits, one API key per simulated till, one signed-in device with a few rewards in
the wallet per simulated member), starts gunicorn, warms its workers up, runs each scenario and
prints requests per second and p50/p95/p99 latency (also in ``var/bench-api-results.json``).

The default load generator is client threads in this process (``http.client``, a connection per
request, each client one request a second from a random phase). ``--generator locust`` runs locust
headless from its own virtualenv (``var/locust-venv``, created on first use, so gevent is never
imported beside Django); this same file is then its locustfile (``BENCH_SCENARIO`` = ``stamp`` or
``wallet``), defining only the simulated users. On this 2-core machine locust's gevent clients
reported 8–10× the latency the threaded clients measured for the same server and load.
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
    # geventhttpclient: a few times cheaper per request than requests, and the load generator
    # shares the two cores with the server.
    from locust import FastHttpUser as HttpUser
    from locust import constant, constant_pacing, task

    _seed = json.loads(SEED_FILE.read_text())
    _scenario = os.environ.get("BENCH_SCENARIO", "stamp")
    _pace = float(os.environ.get("BENCH_PACE", "1"))
    # A till stamps, a member opens the wallet, about once a second each; 0: back to back.
    _wait = constant_pacing(_pace) if _pace > 0 else constant(0)

    # gunicorn's sync workers close every connection after its response anyway.
    _CLOSE = {"Connection": "close"}

    def _phase() -> None:
        """Independent clients are not in step: each starts at a random point of its pacing
        interval (locust starts them all within a moment, and constant pacing would keep them
        firing together, 50 requests at the same instant every second)."""
        if _pace > 0:
            time.sleep(random.uniform(0, _pace))  # noqa: S311 - gevent-patched: yields to the others

    if _scenario == "stamp":

        class Till(HttpUser):
            """A point-of-sale till stamping random members, each stamp with a fresh key."""

            wait_time = _wait

            def on_start(self):
                self.key = random.choice(_seed["api_keys"])  # noqa: S311 - load, not security
                _phase()

            @task
            def stamp(self):
                member_id = random.choice(_seed["member_ids"])  # noqa: S311
                self.client.post(
                    f"/api/v1/pos/members/{member_id}/visits/",
                    json={"stamps": 1, "amount": "4.50"},
                    headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": uuid.uuid4().hex, **_CLOSE},
                    name="POST /pos/members/{id}/visits/",
                )

    else:

        class WalletReader(HttpUser):
            """A member opening the wallet app."""

            wait_time = _wait

            def on_start(self):
                self.token = random.choice(_seed["member_tokens"])  # noqa: S311
                _phase()

            @task
            def wallet(self):
                self.client.get(
                    "/api/v1/member/wallet/",
                    headers={"Authorization": f"Bearer {self.token}", **_CLOSE},
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

    from members import credentials
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
            tokens.append(credentials.member_token_issue(member=m, device_name="bench").secret)
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
            keys.append(credentials.api_key_create(business=business, name=f"till {i}").secret)
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


def warm_up(workers: int) -> None:
    """A few requests of each kind per worker before measuring: a gunicorn worker's first request
    loads the URLconf and opens its database connection (~250 ms), once per process lifetime."""
    import http.client

    seed = json.loads(SEED_FILE.read_text())
    for _ in range(workers * 4):
        for method, path, token, body in (
            ("POST", f"/api/v1/pos/members/{random.choice(seed['member_ids'])}/visits/", seed["api_keys"][0],  # noqa: S311
             json.dumps({"stamps": 1, "amount": "4.50"})),
            ("GET", "/api/v1/member/wallet/", seed["member_tokens"][0], None),
        ):  # fmt: skip
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            if method == "POST":
                headers["Idempotency-Key"] = uuid.uuid4().hex
            conn.request(method, path, body=body, headers=headers)
            conn.getresponse().read()
            conn.close()


def threads_run(scenario: str, users: int, seconds: int, pace: float) -> dict:
    """The default load generator: ``users`` client threads, each its own connection per request
    (gunicorn's sync workers close them), one request every ``pace`` seconds from a random phase
    (independent clients), or back to back with ``pace`` 0. Latency is measured around the whole
    request, connect included."""
    import http.client
    import threading

    seed = json.loads(SEED_FILE.read_text())
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def one(rng: random.Random) -> tuple[float, bool]:
        if scenario == "stamp":
            method, path = "POST", f"/api/v1/pos/members/{rng.choice(seed['member_ids'])}/visits/"
            headers = {"Authorization": f"Bearer {rng.choice(seed['api_keys'])}", "Idempotency-Key": uuid.uuid4().hex,
                       "Content-Type": "application/json"}  # fmt: skip
            body = json.dumps({"stamps": 1, "amount": "4.50"})
        else:
            method, path, body = "GET", "/api/v1/member/wallet/", None
            headers = {"Authorization": f"Bearer {rng.choice(seed['member_tokens'])}"}
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status < 400
        except OSError:
            ok = False
        finally:
            conn.close()
        return (time.perf_counter() - started) * 1000, ok

    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        nonlocal failures
        rng = random.Random(n)  # noqa: S311 - load, not security
        if pace > 0:
            time.sleep(rng.uniform(0, pace))
        while time.monotonic() < deadline:
            started = time.monotonic()
            ms, ok = one(rng)
            with lock:
                latencies.append(ms)
                failures += 0 if ok else 1
            if pace > 0:
                time.sleep(max(0.0, pace - (time.monotonic() - started)))

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, max(0, round(len(latencies) * p) - 1))] if latencies else 0.0

    return {"scenario": scenario, "pace_s": pace, "requests": len(latencies), "failures": failures,
            "rps": len(latencies) / elapsed, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
            "generator": "threads"}  # fmt: skip


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
    parser.add_argument(
        "--generator",
        choices=["threads", "locust"],
        default="threads",
        help="threads: client threads in this process (default); locust: locust headless in its own virtualenv "
        "(on this 2-core machine its gevent clients reported 8–10× the latency the threaded clients measure "
        "for the same server and load)",
    )
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_only:
        seed(args.members, devices=args.users, tills=args.users)
        return

    VAR.mkdir(exist_ok=True)
    binary = locust_install() if args.generator == "locust" else None
    say(f"database {DB_NAME}: create, migrate, seed {args.members} members …")
    database_create()
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=bench_env(), check=True)
    subprocess.run([python, __file__, "--seed-only", "--members", str(args.members), "--users", str(args.users)],
                   cwd=ROOT, env={**bench_env(), "PYTHONPATH": str(ROOT)}, check=True)  # fmt: skip
    say(f"gunicorn: {args.workers} sync workers on 127.0.0.1:{PORT}; {args.generator}: {args.users} clients, "
        f"{args.seconds} s each, " + (f"one request per client every {args.pace} s" if args.pace else "back to back"))  # fmt: skip
    server = gunicorn_start(args.workers)
    warm_up(args.workers)
    try:
        if args.generator == "locust":
            results = [locust_run(binary, s, args.users, args.seconds, args.pace) for s in ("stamp", "wallet")]
        else:
            results = [threads_run(s, args.users, args.seconds, args.pace) for s in ("stamp", "wallet")]
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
