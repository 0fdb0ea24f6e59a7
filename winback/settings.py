"""Settings, all from the environment (django-environ).

With nothing set, Winback runs on the embedded default: SQLite and a server-less Celery
broker under ``var/``, and channel backends that record instead of sending. Set
``WINBACK_ENV=production`` for a deployment: settings then fail loudly when a secret is
missing and pass ``manage.py check --deploy``.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

WINBACK_ENV = env.str("WINBACK_ENV", default="development")
PRODUCTION = WINBACK_ENV == "production"
TESTING = env.bool("WINBACK_TESTING", default=False)

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # no default: a deployment without one must not start
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-winback-key-change-me-0123456789abcdef")
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Links in messages point at the port the demo runs on (``make run``'s PORT) unless set.
SITE_URL = env.str("SITE_URL", default=f"http://localhost:{env.int('PORT', default=8000)}").rstrip("/")
# A new business's prices for billable messages (its currency; each business edits its own in
# its settings): per SMS segment and per WhatsApp business-initiated message.
DEFAULT_SMS_SEGMENT_PRICE = env.str("DEFAULT_SMS_SEGMENT_PRICE", default="0.0079")
DEFAULT_WHATSAPP_MESSAGE_PRICE = env.str("DEFAULT_WHATSAPP_MESSAGE_PRICE", default="0.0050")

INSTALLED_APPS = [
    "winback.apps.WinbackAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_celery_beat",
    "corsheaders",
    "anymail",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "members",
    "campaigns",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before any middleware that can answer by itself: a preflight is answered here, before
    # authentication, and every answer under /api/v1/ (axes' lockout included) gets its headers.
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "winback.tenancy.TenantMiddleware",
    # Last, as axes asks: turns a sign-in refused for a lockout into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "winback.urls"
WSGI_APPLICATION = "winback.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "winback.tenancy.tenant_context",
            ],
        },
    },
]

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'winback.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections on PostgreSQL (web and worker processes alike): a new connection per
# request or task costs a backend start and cold catalog caches (the night's statement then plans
# several times slower). Health checks drop a connection the server closed.
_persistent = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60 if _persistent else 0))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", _persistent)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process, the worker and beat share the demo database.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "members.auth.EmailBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Password guessing (django-axes), on the sign-in form, the admin's and the API's token endpoint:
# the LOGIN_FAILURE_LIMIT-th wrong try on one account (from anywhere), or from one address (on any
# accounts), locks it: that try and every later one are refused, the right password included,
# until LOGIN_COOLOFF_MINUTES pass without a try, or the owner unlocks the account on the team page
# (a superuser: the admin's access attempts). The address is the API throttles' (API_NUM_PROXIES).
AXES_ENABLED = True
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=6)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: the account, and the address
AXES_CLIENT_IP_CALLABLE = "members.auth.login_address"  # winback.api.client_ip, as an IP address
AXES_USERNAME_CALLABLE = "members.auth.login_username"  # as the backend reads it: case and spaces do not count
AXES_LOCKOUT_CALLABLE = "members.auth.lockout_response"  # the sign-in page, or the API's JSON error
AXES_HTTP_RESPONSE_CODE = 429

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Email: EMAIL_URL such as smtp://user:pass@host:587/?tls=True; console in development. Or an ESP's
# API through django-anymail: ANYMAIL_ESP=postmark (POSTMARK_SERVER_TOKEN) or mailgun
# (MAILGUN_API_KEY, MAILGUN_SENDER_DOMAIN, MAILGUN_WEBHOOK_SIGNING_KEY), whose bounce and complaint
# webhook is /webhooks/email/<esp>/tracking/ behind HTTP basic auth ANYMAIL_WEBHOOK_SECRET
# ("user:password", in the webhook's URL at the ESP); without that secret the webhook answers 404.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
ANYMAIL_ESPS = ("postmark", "mailgun")
ANYMAIL_ESP = env.str("ANYMAIL_ESP", default="").lower()
if ANYMAIL_ESP and ANYMAIL_ESP not in ANYMAIL_ESPS:
    raise ImproperlyConfigured(f"ANYMAIL_ESP must be one of {', '.join(ANYMAIL_ESPS)}, not {ANYMAIL_ESP!r}")
if ANYMAIL_ESP:
    EMAIL_BACKEND = f"anymail.backends.{ANYMAIL_ESP}.EmailBackend"
# Only the settings given: anymail reports a missing one by name, where an empty one would be sent.
ANYMAIL = {
    name: value
    for name, value in {
        "POSTMARK_SERVER_TOKEN": env.str("POSTMARK_SERVER_TOKEN", default=""),
        "MAILGUN_API_KEY": env.str("MAILGUN_API_KEY", default=""),
        "MAILGUN_SENDER_DOMAIN": env.str("MAILGUN_SENDER_DOMAIN", default=""),
        "MAILGUN_API_URL": env.str("MAILGUN_API_URL", default=""),  # the EU region's, for one
        "MAILGUN_WEBHOOK_SIGNING_KEY": env.str("MAILGUN_WEBHOOK_SIGNING_KEY", default=""),
        "WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default=""),
    }.items()
    if value
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Winback <no-reply@winback.example>")

# Channel credentials; without them every channel records instead of sending.
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="")  # only for a local fake Twilio in tests
# Businesses on their own Twilio subaccount (channel setting whatsapp.account_sid): the
# subaccount's auth token, "AC…=token,AC…=token", for its WhatsApp templates (Content API).
TWILIO_SUBACCOUNTS = env.dict("TWILIO_SUBACCOUNTS", default={})
# Campaign email goes through EMAIL_URL or the ESP when one is set; without them email is recorded too.
EMAIL_CHANNEL_ENABLED = env.bool("EMAIL_CHANNEL_ENABLED", default="EMAIL_URL" in os.environ or bool(ANYMAIL_ESP))
# Web Push keys come from the environment; in development, when unset, from the file ``make run``
# writes once (``manage.py vapid_keys --write``; under var/, never committed), so the demo's
# wallet can subscribe to push and its messages are signed. The same keys every run: a browser's
# subscription is bound to the public key it subscribed with.
VAPID_KEYS_FILE = Path(env.str("VAPID_KEYS_FILE", default=str(VAR_DIR / "vapid.env")))
if not PRODUCTION and VAPID_KEYS_FILE.is_file():
    environ.Env.read_env(VAPID_KEYS_FILE, overwrite=False)
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
VAPID_PUBLIC_KEY = env.str("VAPID_PUBLIC_KEY", default="")
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="mailto:ops@winback.example")

# Celery (SPEC §6): the database is the source of truth; tasks are acknowledged late,
# rejected when their worker is lost, one prefetched at a time, enqueued on commit.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _queue_dir = VAR_DIR / "celery"
    for _sub in ("out", "processed"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "out"),
        "data_folder_out": str(_queue_dir / "out"),
        "processed_folder": str(_queue_dir / "processed"),
        "store_processed": False,
    }
# Throttle counters and other shared state: Redis when there is one, so every gunicorn worker
# counts together; process memory on the embedded default.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# The REST API (winback/api.py): authentication, permissions and the business scope are set per
# base view; these are the defaults every API view shares.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "winback.api_schema.WinbackAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: every answer, errors included, has the one documented shape (browse at /api/docs/).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON nested at most 32 levels: deeper is the API's 400, not the decoder's RecursionError (a 500).
    "DEFAULT_PARSER_CLASSES": ["winback.parsers.BoundedJSONParser"],
    # Pagination (winback.api.Cursor) and throttles (winback.api.ScopedThrottle) are set on the
    # base views: naming them here would import winback.api while DRF itself is being imported.
    "DEFAULT_THROTTLE_RATES": {
        "member": env.str("API_RATE_MEMBER", default="600/min"),
        "pos": env.str("API_RATE_POS", default="6000/min"),
        "manager": env.str("API_RATE_MANAGER", default="600/min"),
        "sign_in": env.str("API_RATE_SIGN_IN", default="30/min"),  # per client address
        "login": env.str("API_RATE_LOGIN", default="10/min"),  # per client address
    },
    # Throttles key on REMOTE_ADDR, never on a client-supplied X-Forwarded-For; behind N trusted
    # proxies that append to X-Forwarded-For, set API_NUM_PROXIES=N.
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
    "DEFAULT_METADATA_CLASS": None,  # OPTIONS answers 405 (or a CORS preflight)
    "EXCEPTION_HANDLER": "winback.api_errors.exception_handler",
}
# SMS pumping: sign-in codes any one business may send (join and code requests, members or not),
# counted over the last hour and the last 24 hours. A business may set its own in
# ``channel_settings["sign_in"]`` ("codes_per_hour", "codes_per_day"; "sms_countries", the countries
# codes may be texted to, by default the business's own).
SIGN_IN_CODES_PER_BUSINESS_HOUR = env.int("SIGN_IN_CODES_PER_BUSINESS_HOUR", default=100)
SIGN_IN_CODES_PER_BUSINESS_DAY = env.int("SIGN_IN_CODES_PER_BUSINESS_DAY", default=500)
# CORS (django-cors-headers), on the API only and closed by default: only these origins (the member
# web app's) get CORS headers. No credentials: the API's browser callers send bearer tokens, and a
# cookie-authenticated cross-origin call is exactly what CORS must not allow.
CORS_ALLOWED_ORIGINS = env.list("API_CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/v1/"
CORS_ALLOW_HEADERS = ("authorization", "content-type", "idempotency-key", "x-business")
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_ALLOW_CREDENTIALS = False
CORS_PREFLIGHT_MAX_AGE = 600
SPECTACULAR_SETTINGS = {
    "TITLE": "Winback API",
    "DESCRIPTION": (
        "The member wallet app (`Authorization: Bearer wbm_…`), point-of-sale systems "
        "(`Authorization: Bearer wbk_…`) and campaign management by owners and managers "
        "(session or `Authorization: Token …`; `X-Business: <slug>` picks one of several businesses). "
        'Every error is `{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": ["push", "sms", "whatsapp", "email"],
        "VisitKindEnum": "members.models.VisitKind",
        "RewardKindEnum": "members.models.RewardKind",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="winback-demo")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# Covering indexes (INCLUDE) exist on PostgreSQL; SQLite, the embedded default, ignores them.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Web Push endpoints are accepted only on these push services' hosts (no SSRF through a forged
# subscription). Tests widen it to their local fake push service.
PUSH_SERVICE_HOSTS = env.list(
    "PUSH_SERVICE_HOSTS",
    default=[
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "push.services.mozilla.com",
        "web.push.apple.com",
        "*.notify.windows.com",
        "*.push.apple.com",
    ],
)
