"""routerapp settings: one file, configured by environment variables only (see .env.example)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import environ
import plotly
from django.core.exceptions import ImproperlyConfigured

from routerapp.devstack import LOCAL_ENV

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# While `make run` runs, it leaves the settings it generated (embedded database, Redis) here so
# that manage.py works in a second terminal; variables set in the environment win.
if LOCAL_ENV.exists():
    environ.Env.read_env(LOCAL_ENV)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=true for local use).")
    SECRET_KEY = "insecure-local-development-key-change-me"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "routerapp.apps.RouterAppConfig",
    "dashboard.apps.DashboardConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside the rest: whatever fails below, /v1 and /api/v1 answer JSON, never a debug page.
    "routerapp.api.json_errors.JsonErrorsMiddleware",
    "routerapp.middleware.ContentSecurityPolicyMiddleware",
    # Before anything reads the URL: a NUL in the path or query string is a 400, not a 500.
    "routerapp.middleware.UrlTextMiddleware",
    "routerapp.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "routerapp.urls"
WSGI_APPLICATION = "routerapp.wsgi.application"
ASGI_APPLICATION = "routerapp.asgi.application"

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
                "dashboard.context_processors.banners",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/routerapp")
}
# A unix-socket directory may be given percent-encoded in the host (postgres://u@%2Fpath/db).
DATABASES["default"]["HOST"] = unquote(DATABASES["default"].get("HOST", ""))
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("routerapp needs PostgreSQL: DATABASE_URL must be postgres://...")
# Connections come from a psycopg pool per process (Django closes = returns them after each
# request or DB unit). Persistent per-thread connections (CONN_MAX_AGE) leak under ASGI, where
# every synchronous request runs in a thread of its own, and reconnecting per request costs
# more than the query; a pool avoids both.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
    "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
    "timeout": 10,
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Rate-limit counters live in this cache: set CACHE_URL to Redis so every worker process counts
# against the same limit (check routerapp.W001 warns when DEBUG is off and it is process-local).
CACHES = {
    "default": (
        env.cache_url("CACHE_URL")
        if env.str("CACHE_URL", default="")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
# Sign-in throttling (django-axes; attempts are stored in PostgreSQL, so every worker sees them).
# After LOGIN_FAILURE_LIMIT failed sign-ins for one username (from any address), or from one
# address (for any username), sign-in is refused for it, the right password included, until
# LOGIN_LOCKOUT_MINUTES pass without a new failure; `manage.py axes_reset_username NAME` unlocks.
# Failures are not forgiven by a success: signing in to one's own account must not reset the
# count of the address someone guesses passwords from.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# plotly.min.js is served from the installed `plotly` package (same version as the figures
# built server-side, and no 4.7 MB copy in the repository), at static/vendor/plotly/.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", Path(plotly.__file__).resolve().parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve from the finder in development so a fresh checkout works without collectstatic.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-less meta tag; kept default
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): everything from this origin only; no inline script and
# no eval, so injected markup cannot run script. Why styles differ: docs/security.md.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Two inline <style> elements are allowed by their hash, no other: the empty one plotly.js
        # creates and fills through the CSSOM (insertRule, which the CSP does not govern), and
        # the MapLibre stylesheet plotly.js 3.8.2 (plotly 7.1.0) injects at load. A plotly
        # upgrade that changes it shows as a violation in tests/browser/.
        "style-src": [
            "'self'",
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
            "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",
        ],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
# HTTPS: off by default for `make run`; .env.example gives the production values, with which
# `manage.py check --deploy` passes.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# The compose healthcheck calls /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a TLS-terminating proxy, the header it sets to "https" (e.g. X-Forwarded-Proto). Opt-in:
# only safe when the proxy overwrites that header, or a client could claim HTTPS.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "routerapp.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["routerapp.api.permissions.RoleOrScopePermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["routerapp.api.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "routerapp.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "routerapp.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "routerapp API",
    "DESCRIPTION": "Outcome-learning LLM router: completions, outcomes, goals, posteriors.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components, so requests document what they refuse
    # (`minLength: 1` for required text, no read-only fields).
    "COMPONENT_SPLIT_REQUEST": True,
    # Error answers (400/401/403/404/429) documented on every operation: routerapp/api/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "routerapp.api.schema.error_responses",
    ],
    # Swagger UI from the pinned drf-spectacular-sidecar package: /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No spec upload to the public online validator (Swagger UI's default).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- routerapp ---------------------------------------------------------------------------
# Threads (and so DB connections) per process for the async completion path's DB work.
DB_THREADS = env.int("DB_THREADS", default=8)
# How old (seconds) this process's cached configuration (goals, paths, prices, providers, API
# keys) and learned state (posteriors, controller) may be when a completion uses them: a change
# or a revoked key is in force everywhere within this. 0 reads them on every call.
ROUTING_CACHE_SECONDS = env.float("ROUTING_CACHE_SECONDS", default=1.0)
# Largest accepted request body on /v1 and /api/v1; larger bodies get 413.
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=1_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# Where the built-in simulator provider listens (make run starts it).
SIMULATOR_URL = env.str("SIMULATOR_URL", default="http://127.0.0.1:8001/v1")
# Key for encrypting provider API keys at rest; derived from SECRET_KEY when unset.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
# Environment variables a provider's `api_key_env` may name, besides ROUTERAPP_PROVIDER_KEY_*.
PROVIDER_KEY_ENV_ALLOWED = env.list("PROVIDER_KEY_ENV_ALLOWED", default=["OPENAI_API_KEY"])
# Circuit breaker: consecutive retryable failures before a provider is skipped, and for how long.
PROVIDER_BREAKER_THRESHOLD = env.int("PROVIDER_BREAKER_THRESHOLD", default=5)
PROVIDER_BREAKER_COOLDOWN_SECONDS = env.float("PROVIDER_BREAKER_COOLDOWN_SECONDS", default=30.0)
# Per-key rate limit (requests per minute) for keys that set none; 0 = unlimited.
DEFAULT_RATE_LIMIT_PER_MINUTE = env.int("DEFAULT_RATE_LIMIT_PER_MINUTE", default=600)
# A change request's projected effect replays this many of the goal's latest decisions.
PROJECTION_DECISIONS = env.int("PROJECTION_DECISIONS", default=2000)
# The user that authors suggested change requests (created on demand, inactive: it can neither
# sign in nor approve anything).
SUGGESTIONS_USERNAME = env.str("SUGGESTIONS_USERNAME", default="routerapp-suggestions")

# Shadow traffic (services/shadows.py): how long a comparison may stay pending (its message
# lost) before it counts as dropped.
SHADOW_PENDING_TIMEOUT_SECONDS = env.int("SHADOW_PENDING_TIMEOUT_SECONDS", default=3600)
# Regret alert webhook (services/alerts.py): per-attempt timeout and attempts in all; figures
# of an unchanged alert are re-stored at most this often.
REGRET_WEBHOOK_TIMEOUT_SECONDS = env.float("REGRET_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
REGRET_WEBHOOK_ATTEMPTS = env.int("REGRET_WEBHOOK_ATTEMPTS", default=3)
REGRET_ALERT_REFRESH_SECONDS = env.int("REGRET_ALERT_REFRESH_SECONDS", default=60)

# --- Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Fail in milliseconds, not seconds, when the broker is down: the request path never waits on it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 0,
    "socket_connect_timeout": 1,
    "socket_timeout": 5,
    "visibility_timeout": 600,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # Every 5 minutes: recompute the last two hours of rollups from the raw decisions, so a
    # rollup that drifted (e.g. a crash between statements in an old version) heals itself.
    "reconcile-rollups": {
        "task": "routerapp.rollups_reconcile",
        "schedule": 300.0,
    },
    # Every 2 seconds: fold the quality controller of goals whose traffic has stopped (live
    # traffic folds within a second by itself). Idempotent; a late run is dropped, not queued.
    "advance-controllers": {
        "task": "routerapp.controller_advance_pending",
        "schedule": 2.0,
        "options": {"expires": 2.0},
    },
    # Every minute: shadow comparisons stuck pending end `dropped`; regret alerts re-checked
    # (a judged comparison checks its goal at once; this clears alerts of goals gone quiet).
    "maintain-shadows": {
        "task": "routerapp.shadows_maintain",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Hourly: propose change requests from the evidence per bucket (services/suggestions.py).
    # Idempotent (one pending suggestion per goal and bucket); a late run is dropped, not queued.
    "propose-suggestions": {
        "task": "routerapp.suggestions_propose",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # One line per upstream request is noise at INFO; decisions are stored, not logged.
    "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpx2", "httpcore", "openai")},
}
