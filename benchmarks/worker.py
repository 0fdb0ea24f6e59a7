"""A real Celery worker for the benchmarks (the nights' and the dispatcher's): started in its own
process group on the benchmark's Redis database, waited for, stopped, and its CPU time read."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .db import REDIS_URL

BASE_DIR = Path(__file__).resolve().parent.parent


def broker_flush() -> None:
    """Empty the benchmark's Redis database (14): no stale or unacknowledged task survives a run."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def worker_start(*, concurrency: int, log_path: str) -> subprocess.Popen:
    celery = Path(sys.executable).with_name("celery")
    cmd = [
        str(celery),
        "-A",
        "winback",
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
        "-Q",
        "celery",
        "-n",
        f"bench-{os.getpid()}@%h",
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed with it
    try:
        # Its own session: the whole group (main process and pool children) is stopped at the end.
        return subprocess.Popen(
            cmd, cwd=BASE_DIR, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        log.close()


def worker_wait_ready(proc: subprocess.Popen, timeout: float = 90.0) -> None:
    from winback.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Celery worker exited with {proc.returncode}")
        if app.control.ping(timeout=1.0):
            return
    raise RuntimeError("the Celery worker did not answer a ping in time")


def worker_stop(proc: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM to the main process, which stops its pool); the whole process
    group is killed if it has not stopped in 30 s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # Pool children left behind in the group (they should have gone with the parent).
    for pid in _group_pids(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # field 5 of /proc/PID/stat: the process group
            pids.append(int(entry.name))
    return pids


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of the live processes of a group, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _group_pids(pgid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            continue
    return total / ticks
