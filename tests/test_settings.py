import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "WINBACK_", "DJANGO_"))
    }
    clean.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


SHOW = (
    "import django, json; from django.conf import settings as s; django.setup();"
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'broker': s.CELERY_BROKER_URL,"
    " 'acks_late': s.CELERY_TASK_ACKS_LATE, 'reject': s.CELERY_TASK_REJECT_ON_WORKER_LOST,"
    " 'prefetch': s.CELERY_WORKER_PREFETCH_MULTIPLIER, 'use_tz': s.USE_TZ}))"
)


def test_with_nothing_set_it_runs_on_sqlite_and_a_serverless_broker():
    result = run_python(SHOW, DJANGO_SETTINGS_MODULE="winback.settings")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "db": "django.db.backends.sqlite3",
        "broker": "filesystem://",
        "acks_late": True,
        "reject": True,
        "prefetch": 1,
        "use_tz": True,
    }


def test_database_and_redis_urls_are_read_from_the_environment():
    result = run_python(
        SHOW,
        DJANGO_SETTINGS_MODULE="winback.settings",
        DATABASE_URL="postgres://u:p@db.internal:5432/wb",
        REDIS_URL="redis://cache.internal:6379/0",
    )

    shown = json.loads(result.stdout)
    assert (shown["db"], shown["broker"]) == ("django.db.backends.postgresql", "redis://cache.internal:6379/0")


def test_production_settings_pass_check_deploy():
    env = {
        "DJANGO_SETTINGS_MODULE": "winback.settings",
        "WINBACK_ENV": "production",
        "SECRET_KEY": "k" * 20 + "-production-secret-9f8e7d6c5b4a3928171605f4e3d2c1b0",
        "ALLOWED_HOSTS": "winback.example",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "WINBACK_", "DJANGO_"))}
    clean.update(env)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_python(SHOW, DJANGO_SETTINGS_MODULE="winback.settings", WINBACK_ENV="production")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_docker_compose_runs_the_whole_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    assert "gunicorn" in " ".join(services["web"]["command"])
    assert "worker" in " ".join(services["worker"]["command"])
    assert "beat" in " ".join(services["beat"]["command"])
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://")
