"""Django settings, derived from the validated `coinlink.config.Config` and nothing else."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF

from coinlink import config as _config

try:
    CONFIG = _config.load()
except _config.ConfigError as error:
    # One clear line and a non-zero exit, not a traceback.
    raise SystemExit(f"CoinLink configuration error: {error}") from None

BASE_DIR = _config.BASE_DIR
COINLINK_ENV = CONFIG.env
PRODUCTION = CONFIG.production
EMBEDDED = CONFIG.embedded
TESTING = "pytest" in sys.modules

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug and not PRODUCTION
ALLOWED_HOSTS = list(CONFIG.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    # Installed only so its tables keep their migrations until a later release drops them: nothing writes
    # or reads them any more, the Session row is the authority (docs/operations.md, "Retired tables").
    "rest_framework_simplejwt.token_blacklist",
    "corsheaders",
    "django_prometheus",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "channels",
    "coinlink.apps.CoinlinkConfig",
    "accounts",
    "markets",
    "notifications",
    "realtime",
]

MIDDLEWARE = [
    "coinlink.middleware.RequestIdMiddleware",
    "coinlink.middleware.TrailingSlashMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "coinlink.csp_middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "coinlink.middleware.RequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "coinlink.urls"
# Only the admin shows messages, and it has a session anyway; the default (cookie, then session)
# builds a cookie signer on every request, API requests included.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
WSGI_APPLICATION = "coinlink.wsgi.application"
ASGI_APPLICATION = "coinlink.asgi.application"
APPEND_SLASH = False

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
if CONFIG.database_url and not CONFIG.database_url.startswith("sqlite"):
    _db = dj_database_url.parse(
        CONFIG.database_url,
        conn_max_age=CONFIG.db_conn_max_age,
        conn_health_checks=True,
    )
    _db["ENGINE"] = "coinlink.db.postgresql"
    _db.setdefault("OPTIONS", {})
    if CONFIG.db_statement_timeout_ms:
        _db["OPTIONS"]["options"] = f"-c statement_timeout={CONFIG.db_statement_timeout_ms}"
    _db["OPTIONS"].setdefault("connect_timeout", 5)
    _db["TEST"] = {"NAME": (_db.get("NAME") or "coinlink") + "_test"}
else:
    _db = dj_database_url.parse(CONFIG.database_url or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    _db["ENGINE"] = "django_prometheus.db.backends.sqlite3"
    _db["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker ----------------------------------------------------------------------
if CONFIG.redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": CONFIG.redis_url,
            "KEY_PREFIX": "coinlink",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                "CONNECTION_POOL_KWARGS": {"max_connections": 50, "health_check_interval": 30},
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "coinlink"}}
# No CHANNEL_LAYERS: the feed fans out through its own Redis pub/sub hub (docs/realtime.md, decision record).

CELERY_BROKER_URL = CONFIG.redis_url or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Embedded mode has no broker process: tasks run in the calling process.
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_BEAT_SCHEDULE: dict = {}  # filled by coinlink.beat_schedule, the single source of periodic jobs
CELERY_BEAT_SCHEDULER = "coinlink.celery:BeatScheduler"
CELERY_BEAT_SCHEDULE_FILENAME = CONFIG.celery_beat_schedule_file

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    # Also verifies bcrypt_sha256 hashes: Django maps an algorithm to the LAST hasher listing it, so
    # listing Django's own BCryptSHA256PasswordHasher here too would shadow the configured rounds.
    "accounts.hashers.ConfiguredBCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
BCRYPT_ROUNDS = CONFIG.bcrypt_rounds
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.passwords.StrengthValidator", "OPTIONS": {"min_score": 3}},
    # Not a check: Django tells validators when a password changed, by whatever route; this ends the sessions.
    {"NAME": "accounts.passwords.SessionsEndOnChange"},
]

JWT_SIGNING_KEY = CONFIG.jwt_signing_key
SIMPLE_JWT: dict[str, Any] = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=CONFIG.jwt_access_ttl),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=CONFIG.jwt_refresh_ttl),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": False,  # rotation is accounts.services.session_refresh's claim, not simplejwt's
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": CONFIG.jwt_signing_key,
    "ISSUER": CONFIG.jwt_issuer,
    "AUDIENCE": CONFIG.jwt_audience,
    "LEEWAY": 60,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

# --- DRF and OpenAPI -------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["coinlink.parsers.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "coinlink.negotiation.RememberedContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "coinlink.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "coinlink.errors.exception_handler",
    "DEFAULT_METADATA_CLASS": "coinlink.metadata.ActionlessMetadata",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": False,
    # Per authenticated user, across all their addresses (the middleware limits per IP before auth).
    "DEFAULT_THROTTLE_CLASSES": ["coinlink.throttling.UserRateLimit"],
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "CoinLink API",
    "DESCRIPTION": "Crypto market data, accounts, alerts and notifications. Contract: API.md (v2).",
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/(v2/)?",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "coinlink.schema.ops_paths"],
    # Swagger UI (and Redoc, if a view is ever routed) from drf-spectacular-sidecar's static files,
    # never a CDN: the docs work offline and fit the CSP below.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- CORS and security -----------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = list(CONFIG.cors_allowed_origins)
CORS_ALLOW_CREDENTIALS = False
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "ETag", "X-History-Backfill"]
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "if-none-match", "x-request-id", "traceparent"]
CSRF_TRUSTED_ORIGINS = list(CONFIG.csrf_trusted_origins)
WS_ALLOWED_ORIGINS = list(CONFIG.ws_allowed_origins)

# Content-Security-Policy on every response (django-csp): nothing from another host, no inline
# script or style, no eval. Swagger UI needs only data: images (its CSS icons); 'self' covers the
# live page's ws:/wss: socket to its own host (CSP Level 3). See docs/deployment.md.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = CONFIG.secure_hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = CONFIG.secure_hsts_seconds > 0
SECURE_HSTS_PRELOAD = CONFIG.secure_hsts_preload
SECURE_SSL_REDIRECT = CONFIG.secure_ssl_redirect
# Health probes and metrics are scraped over plain HTTP inside the deployment.
SECURE_REDIRECT_EXEMPT = [r"^health/?$", r"^livez/?$", r"^readyz/?$", r"^metrics/?$"]
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
if CONFIG.secure_proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
TRUSTED_PROXIES = CONFIG.trusted_proxies
DATA_UPLOAD_MAX_MEMORY_SIZE = CONFIG.max_request_body_bytes
MAX_REQUEST_BODY_BYTES = CONFIG.max_request_body_bytes
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Rate limits (django-ratelimit over the shared cache) -------------------------------------
RATELIMIT_ENABLE = CONFIG.ratelimit_enabled
RATELIMIT_USE_CACHE = "default"
RATELIMIT_IP_META_KEY = "coinlink.net.client_ip_for_ratelimit"
RATELIMIT_DEFAULT = CONFIG.ratelimit_default
RATELIMIT_MARKET = CONFIG.ratelimit_market
RATELIMIT_USER = CONFIG.ratelimit_user
RATELIMIT_EXCEPTION_CLASS = "django_ratelimit.exceptions.Ratelimited"

# --- Metrics ---------------------------------------------------------------------------------
PROMETHEUS_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.5, 1.0, 2.5, 5.0, float("inf"))
PROMETHEUS_METRIC_NAMESPACE = ""
METRICS_ALLOWED_NETWORKS = CONFIG.metrics_allowed_networks
METRICS_TOKEN = CONFIG.metrics_token

# --- I18N, static ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Email -----------------------------------------------------------------------------------
if CONFIG.email_host:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = CONFIG.email_host
    EMAIL_PORT = CONFIG.email_port
    EMAIL_HOST_USER = CONFIG.email_host_user
    EMAIL_HOST_PASSWORD = CONFIG.email_host_password
    EMAIL_USE_TLS = CONFIG.email_use_tls
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = CONFIG.default_from_email
NOTIFICATION_EMAILS_PER_HOUR = CONFIG.notification_emails_per_hour
FRONTEND_URL = CONFIG.frontend_url
PASSWORD_RESET_TTL = CONFIG.password_reset_ttl
EMAIL_VERIFY_TTL = CONFIG.email_verify_ttl

# --- CoinLink domain settings ----------------------------------------------------------------
MARKET_POLL_SECONDS = CONFIG.market_poll_seconds
MARKET_STALE_SECONDS = CONFIG.market_stale_seconds
MARKET_PRIMARY_PROVIDER = CONFIG.market_primary_provider
MARKET_QUOTES = CONFIG.market_quotes
COINGECKO_API_KEY = CONFIG.coingecko_api_key
COINGECKO_API_PLAN = CONFIG.coingecko_api_plan
COINGECKO_BASE_URL = CONFIG.coingecko_base_url
COINBASE_EXCHANGE_BASE_URL = CONFIG.coinbase_exchange_base_url
COINBASE_STREAM_URL = CONFIG.coinbase_stream_url
MARKET_STREAM_ENABLED = CONFIG.market_stream_enabled
MARKET_STREAM_FLUSH_MS = CONFIG.market_stream_flush_ms
MARKET_STREAM_IDLE_SECONDS = CONFIG.market_stream_idle_seconds
MARKET_STREAM_BACKOFF_MAX_SECONDS = CONFIG.market_stream_backoff_max_seconds
MARKET_STREAM_LEASE_SECONDS = CONFIG.market_stream_lease_seconds
UPSTREAM_CONNECT_TIMEOUT = CONFIG.upstream_connect_timeout
UPSTREAM_READ_TIMEOUT = CONFIG.upstream_read_timeout
NOTIFICATION_RETENTION_DAYS = CONFIG.notification_retention_days
NOTIFICATION_INBOX_MAX = CONFIG.notification_inbox_max
WS_MAX_PER_IP = CONFIG.ws_max_per_ip
WS_MAX_FRAME_BYTES = CONFIG.ws_max_frame_bytes
WS_MAX_FRAMES_PER_SECOND = CONFIG.ws_max_frames_per_second
WS_PING_SECONDS = CONFIG.ws_ping_seconds
WS_SESSION_RECHECK_SECONDS = CONFIG.ws_session_recheck_seconds
REQUIRE_SERVICES = CONFIG.require_services

# --- Logging and Sentry ----------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "coinlink.logging.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "coinlink.logging.JsonFormatter"},
        "text": {"()": "coinlink.logging.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": CONFIG.log_format,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": CONFIG.log_level},
    "loggers": {
        # Our access log replaces these; they would log every request a second time.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

if CONFIG.sentry_dsn:
    from coinlink.observability import sentry_init

    sentry_init(CONFIG)
