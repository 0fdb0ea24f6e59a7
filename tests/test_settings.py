import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "WINBACK_", "DJANGO_", "VAPID_", "SITE_URL", "PORT"))
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


KEYS = (
    "import django, json; from django.conf import settings as s; django.setup();"
    "print(json.dumps([s.SITE_URL, s.VAPID_PUBLIC_KEY, s.VAPID_PRIVATE_KEY]))"
)


def shown(**env) -> list:
    """SITE_URL and the VAPID keys as settings read them from ``env`` alone (none of this shell's)."""
    result = run_python(KEYS, DJANGO_SETTINGS_MODULE="winback.settings", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def command(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_make_run_writes_vapid_keys_once_and_development_reads_them_when_the_environment_has_none(tmp_path):
    keys = tmp_path / "vapid.env"
    written = command("vapid_keys", "--write", str(keys))
    assert written.returncode == 0, written.stderr
    first = keys.read_text()
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    again = command("vapid_keys", "--write", str(keys))
    assert again.returncode == 0 and keys.read_text() == first  # kept: browsers subscribed with it
    lines = dict(line.split("=", 1) for line in first.splitlines())

    development = shown(VAPID_KEYS_FILE=str(keys))
    set_by_env = shown(VAPID_KEYS_FILE=str(keys), VAPID_PUBLIC_KEY="pub-env", VAPID_PRIVATE_KEY="priv-env")
    production = shown(VAPID_KEYS_FILE=str(keys), WINBACK_ENV="production", SECRET_KEY="x" * 50)

    assert development[1:] == [lines["VAPID_PUBLIC_KEY"], lines["VAPID_PRIVATE_KEY"]]
    assert set_by_env[1:] == ["pub-env", "priv-env"]
    assert production[1:] == ["", ""]  # a deployment sets its keys itself


def test_site_url_follows_the_port_unless_it_is_set():
    assert shown(PORT="8123")[0] == "http://localhost:8123"
    assert shown()[0] == "http://localhost:8000"
    assert shown(PORT="8123", SITE_URL="https://club.example/")[0] == "https://club.example"


EMAIL = (
    "import django, json; from django.conf import settings as s; django.setup();"
    "print(json.dumps([s.EMAIL_BACKEND, s.EMAIL_CHANNEL_ENABLED, s.ANYMAIL]))"
)


def test_an_esp_named_in_the_environment_sends_campaign_email_through_anymail():
    result = run_python(
        EMAIL, DJANGO_SETTINGS_MODULE="winback.settings", ANYMAIL_ESP="Postmark", POSTMARK_SERVER_TOKEN="pm-token"
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "anymail.backends.postmark.EmailBackend",
        True,
        {"POSTMARK_SERVER_TOKEN": "pm-token"},
    ]


def test_an_esp_anymail_is_not_set_up_for_refuses_to_start():
    result = run_python(EMAIL, DJANGO_SETTINGS_MODULE="winback.settings", ANYMAIL_ESP="sendmail")

    assert result.returncode != 0
    assert "ANYMAIL_ESP must be one of postmark, mailgun" in result.stderr
