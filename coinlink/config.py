"""Every environment variable CoinLink reads, parsed and validated once, in one place.

`load()` returns a frozen `Config`; `settings.py` turns it into Django settings. A bad value
raises `ConfigError` naming the variable, and `settings.py` turns that into one clear line and
a non-zero exit. The table in docs/configuration.md lists the same variables.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias
from urllib.parse import urlparse

from markets.vocabulary import QUOTES

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_SECRETS_FILE = BASE_DIR / ".coinlink-dev-secrets"

ENVIRONMENTS = ("development", "production")
PROVIDERS = ("coingecko", "coinbase")


class ConfigError(Exception):
    """One environment variable has a value CoinLink cannot run with."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name


@dataclass(frozen=True)
class Config:
    env: str
    debug: bool
    secret_key: str
    jwt_signing_key: str
    allowed_hosts: tuple[str, ...]
    database_url: str | None
    redis_url: str | None
    db_conn_max_age: int
    db_statement_timeout_ms: int
    cors_allowed_origins: tuple[str, ...]
    ws_allowed_origins: tuple[str, ...]
    csrf_trusted_origins: tuple[str, ...]
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    secure_proxy_ssl_header: bool
    secure_ssl_redirect: bool
    secure_hsts_seconds: int
    secure_hsts_preload: bool
    jwt_access_ttl: int
    jwt_refresh_ttl: int
    jwt_issuer: str
    jwt_audience: str
    bcrypt_rounds: int
    market_poll_seconds: int
    market_stale_seconds: int
    market_primary_provider: str
    market_quotes: tuple[str, ...]
    coingecko_api_key: str
    coingecko_api_plan: str
    coingecko_base_url: str
    coinbase_exchange_base_url: str
    coinbase_stream_url: str
    market_stream_enabled: bool
    market_stream_flush_ms: int
    market_stream_idle_seconds: float
    market_stream_backoff_max_seconds: float
    market_stream_lease_seconds: float
    market_stream_metrics_port: int
    upstream_connect_timeout: float
    upstream_read_timeout: float
    notification_retention_days: int
    notification_inbox_max: int
    ratelimit_default: str
    ratelimit_market: str
    ratelimit_user: str
    ratelimit_enabled: bool
    ws_max_per_ip: int
    ws_max_frame_bytes: int
    ws_max_frames_per_second: int
    ws_ping_seconds: int
    ws_session_recheck_seconds: int
    max_request_body_bytes: int
    log_level: str
    log_format: str
    sentry_dsn: str
    sentry_environment: str
    sentry_traces_sample_rate: float
    release: str
    metrics_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    metrics_token: str
    email_host: str
    email_port: int
    email_host_user: str
    email_host_password: str
    email_use_tls: bool
    default_from_email: str
    notification_emails_per_hour: int
    frontend_url: str
    password_reset_ttl: int
    email_verify_ttl: int
    require_services: bool
    celery_metrics_port: int
    celery_beat_schedule_file: str
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def embedded(self) -> bool:
        """No Redis configured: in-process cache, feed fan-out and schedule."""
        return self.redis_url is None


# _Reader's methods are named after what they read (`r.str`, `r.int`, ...), which shadows the builtins
# in its class body: its signatures spell the types through these aliases.
Str: TypeAlias = str
Int: TypeAlias = int
Bool: TypeAlias = bool
Float: TypeAlias = float


class _Reader:
    def __init__(self, environ: Mapping[Str, Str]):
        self.environ = environ

    def raw(self, name: Str) -> Str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: Str, default: Str = "") -> Str:
        value = self.raw(name)
        return default if value is None else value

    def choice(self, name: Str, choices: tuple[Str, ...], default: Str) -> Str:
        value = self.str(name, default).lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def bool(self, name: Str, default: Bool) -> Bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be true or false, got {value!r}")

    def int(self, name: Str, default: Int, minimum: Int = 0, maximum: Int | None = None) -> Int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, got {value!r}") from None
        return self._bounded(name, number, minimum, maximum)

    def float(self, name: Str, default: Float, minimum: Float, maximum: Float) -> Float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {value!r}") from None
        if number != number:  # NaN
            raise ConfigError(name, "must be a number, got NaN")
        return self._bounded(name, number, minimum, maximum)

    def duration(self, name: Str, default: Int, minimum: Int = 1) -> Int:
        """Seconds, from `900`, `900s`, `15m`, `12h` or `7d`."""
        value = self.raw(name)
        if value is None:
            return default
        match = re.fullmatch(r"(\d+)\s*([smhd]?)", value.lower())
        if not match:
            raise ConfigError(name, f"must be a duration like 900, 15m, 12h or 7d, got {value!r}")
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return self._bounded(name, int(match.group(1)) * unit, minimum, None)

    def list(self, name: Str, default: tuple[Str, ...] = ()) -> tuple[Str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        return tuple(item.strip() for item in value.split(",") if item.strip())

    def networks(self, name: Str) -> tuple:
        nets = []
        for item in self.list(name):
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(name, f"{item!r} is not an IP address or CIDR network") from None
        return tuple(nets)

    def url(self, name: Str, schemes: tuple[Str, ...]) -> Str | None:
        value = self.raw(name)
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in schemes or not (parsed.hostname or parsed.path):
            raise ConfigError(name, f"must be a URL with scheme {' or '.join(schemes)}")
        return value

    def origins(self, name: Str, default: tuple[Str, ...]) -> tuple[Str, ...]:
        origins = self.list(name, default)
        for origin in origins:
            parsed = urlparse(origin)
            if origin == "*" or parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError(name, f"{origin!r} is not an exact origin like https://app.example.com")
            if parsed.path not in ("", "/"):
                raise ConfigError(name, f"{origin!r} must not have a path")
        return tuple(o.rstrip("/") for o in origins)

    @staticmethod
    def _bounded(name, number, minimum, maximum):
        if number < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise ConfigError(name, f"must be at most {maximum}, got {number}")
        return number


def _dev_secret(name: str) -> str:
    """A random per-checkout secret kept in an ignored file, so development never uses a constant."""
    stored: dict[str, str] = {}
    if DEV_SECRETS_FILE.exists():
        for line in DEV_SECRETS_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            if value:
                stored[key] = value
    if name not in stored:
        stored[name] = secrets.token_urlsafe(64)
        DEV_SECRETS_FILE.write_text("".join(f"{k}={v}\n" for k, v in stored.items()))
        DEV_SECRETS_FILE.chmod(0o600)
    return stored[name]


def _secrets(r: _Reader, production: bool) -> tuple[str, str]:
    secret_key = r.raw("SECRET_KEY")
    jwt_key = r.raw("JWT_SIGNING_KEY")
    if production:
        if secret_key is None:
            raise ConfigError("SECRET_KEY", "is required in production (50+ random characters)")
        if jwt_key is None:
            raise ConfigError("JWT_SIGNING_KEY", "is required in production (32+ random characters)")
    secret_key = secret_key or _dev_secret("SECRET_KEY")
    jwt_key = jwt_key or _dev_secret("JWT_SIGNING_KEY")
    if len(secret_key) < 50 or len(set(secret_key)) < 5:
        raise ConfigError("SECRET_KEY", "is too weak: use 50+ random characters")
    if secret_key.startswith("django-insecure"):
        raise ConfigError("SECRET_KEY", "must not be a 'django-insecure-' key")
    if len(jwt_key) < 32:
        raise ConfigError("JWT_SIGNING_KEY", "is too weak: use 32+ random characters")
    if jwt_key == secret_key:
        raise ConfigError("JWT_SIGNING_KEY", "must differ from SECRET_KEY")
    return secret_key, jwt_key


def load(environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the whole configuration; raises ConfigError on the first bad value."""
    r = _Reader(os.environ if environ is None else environ)
    env = r.choice("COINLINK_ENV", ENVIRONMENTS, "development")
    production = env == "production"
    secret_key, jwt_key = _secrets(r, production)

    database_url = r.url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
    redis_url = r.url("REDIS_URL", ("redis", "rediss", "unix"))
    allowed_hosts = r.list("ALLOWED_HOSTS", () if production else ("127.0.0.1", "localhost", "[::1]", "testserver"))
    if production:
        for name, value in (("ALLOWED_HOSTS", allowed_hosts), ("DATABASE_URL", database_url), ("REDIS_URL", redis_url)):
            if not value:
                raise ConfigError(name, "is required in production")
        if "*" in allowed_hosts:
            raise ConfigError("ALLOWED_HOSTS", "must list exact host names in production, not '*'")

    dev_origins = ("http://127.0.0.1:8000", "http://localhost:8000", "http://localhost:5173")
    cors = r.origins("CORS_ALLOWED_ORIGINS", () if production else dev_origins)
    public = r.origins("PUBLIC_ORIGINS", () if production else ("http://127.0.0.1:8000", "http://localhost:8000"))
    ws_origins = r.origins("WS_ALLOWED_ORIGINS", tuple(dict.fromkeys(cors + public)))

    return Config(
        env=env,
        debug=r.bool("DEBUG", False),
        secret_key=secret_key,
        jwt_signing_key=jwt_key,
        allowed_hosts=allowed_hosts,
        database_url=database_url,
        redis_url=redis_url,
        db_conn_max_age=r.int("DB_CONN_MAX_AGE", 60, 0, 3600),
        db_statement_timeout_ms=r.int("DB_STATEMENT_TIMEOUT_MS", 5000, 0, 600_000),
        cors_allowed_origins=cors,
        ws_allowed_origins=ws_origins,
        csrf_trusted_origins=tuple(dict.fromkeys(public + cors)),
        trusted_proxies=r.networks("TRUSTED_PROXIES"),
        secure_proxy_ssl_header=r.bool("SECURE_PROXY_SSL_HEADER", False),
        secure_ssl_redirect=r.bool("SECURE_SSL_REDIRECT", production),
        secure_hsts_seconds=r.int("SECURE_HSTS_SECONDS", 31_536_000 if production else 0, 0),
        secure_hsts_preload=r.bool("SECURE_HSTS_PRELOAD", production),
        jwt_access_ttl=r.duration("JWT_ACCESS_TTL", 15 * 60, minimum=30),
        jwt_refresh_ttl=r.duration("JWT_REFRESH_TTL", 7 * 86400, minimum=60),
        jwt_issuer=r.str("JWT_ISSUER", "coinlink"),
        jwt_audience=r.str("JWT_AUDIENCE", "coinlink-api"),
        bcrypt_rounds=r.int("BCRYPT_ROUNDS", 12, 4, 31),
        market_poll_seconds=r.int("MARKET_POLL_SECONDS", 30, 1, 3600),
        market_stale_seconds=r.int("MARKET_STALE_SECONDS", 3 * r.int("MARKET_POLL_SECONDS", 30, 1, 3600), 1),
        market_primary_provider=r.choice("MARKET_PRIMARY_PROVIDER", PROVIDERS, "coingecko"),
        market_quotes=_quotes(r),
        coingecko_api_key=r.str("COINGECKO_API_KEY"),
        coingecko_api_plan=r.choice("COINGECKO_API_PLAN", ("demo", "pro"), "demo"),
        coingecko_base_url=r.url("COINGECKO_BASE_URL", ("http", "https")) or "https://api.coingecko.com/api/v3",
        coinbase_exchange_base_url=r.url("COINBASE_EXCHANGE_BASE_URL", ("http", "https"))
        or "https://api.exchange.coinbase.com",
        coinbase_stream_url=r.url("COINBASE_STREAM_URL", ("ws", "wss")) or "wss://ws-feed.exchange.coinbase.com",
        market_stream_enabled=r.bool("MARKET_STREAM_ENABLED", True),
        market_stream_flush_ms=r.int("MARKET_STREAM_FLUSH_MS", 1000, 50, 60_000),
        market_stream_idle_seconds=r.float("MARKET_STREAM_IDLE_SECONDS", 10.0, 0.5, 300),
        market_stream_backoff_max_seconds=r.float("MARKET_STREAM_BACKOFF_MAX_SECONDS", 60.0, 0.1, 600),
        market_stream_lease_seconds=r.float("MARKET_STREAM_LEASE_SECONDS", 15.0, 1.0, 300),
        market_stream_metrics_port=r.int("MARKET_STREAM_METRICS_PORT", 0, 0, 65535),
        upstream_connect_timeout=r.float("UPSTREAM_CONNECT_TIMEOUT", 3.0, 0.1, 60),
        upstream_read_timeout=r.float("UPSTREAM_READ_TIMEOUT", 10.0, 0.1, 120),
        notification_retention_days=r.int("NOTIFICATION_RETENTION_DAYS", 90, 1),
        notification_inbox_max=r.int("NOTIFICATION_INBOX_MAX", 5000, 100, 1_000_000),
        ratelimit_default=_rate(r, "RATELIMIT_DEFAULT", "100/m"),
        ratelimit_market=_rate(r, "RATELIMIT_MARKET", "600/m"),
        ratelimit_user=_rate(r, "RATELIMIT_USER", "600/m"),
        ratelimit_enabled=r.bool("RATELIMIT_ENABLED", True),
        ws_max_per_ip=r.int("WS_MAX_PER_IP", 50, 1),
        ws_max_frame_bytes=r.int("WS_MAX_FRAME_BYTES", 65536, 1024),
        ws_max_frames_per_second=r.int("WS_MAX_FRAMES_PER_SECOND", 20, 1),
        ws_ping_seconds=r.int("WS_PING_SECONDS", 25, 1),
        ws_session_recheck_seconds=r.int("WS_SESSION_RECHECK_SECONDS", 30, 1, 3600),
        max_request_body_bytes=r.int("MAX_REQUEST_BODY_BYTES", 1_048_576, 1024),
        log_level=r.choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper(),
        log_format=r.choice("LOG_FORMAT", ("json", "text"), "json" if production else "text"),
        sentry_dsn=r.str("SENTRY_DSN"),
        sentry_environment=r.str("SENTRY_ENVIRONMENT", env),
        sentry_traces_sample_rate=r.float("SENTRY_TRACES_SAMPLE_RATE", 0.0, 0.0, 1.0),
        release=r.str("COINLINK_RELEASE", "dev"),
        metrics_allowed_networks=r.networks("METRICS_ALLOWED_NETWORKS"),
        metrics_token=r.str("METRICS_TOKEN"),
        email_host=r.str("EMAIL_HOST"),
        email_port=r.int("EMAIL_PORT", 587, 1, 65535),
        email_host_user=r.str("EMAIL_HOST_USER"),
        email_host_password=r.str("EMAIL_HOST_PASSWORD"),
        email_use_tls=r.bool("EMAIL_USE_TLS", True),
        default_from_email=r.str("DEFAULT_FROM_EMAIL", "CoinLink <noreply@coinlink.local>"),
        notification_emails_per_hour=r.int("NOTIFICATION_EMAILS_PER_HOUR", 20, 1, 1000),
        frontend_url=_frontend_url(r, production),
        password_reset_ttl=r.duration("PASSWORD_RESET_TTL", 3600, minimum=300),
        email_verify_ttl=r.duration("EMAIL_VERIFY_TTL", 48 * 3600, minimum=300),
        require_services=r.bool("COINLINK_REQUIRE_SERVICES", False),
        celery_metrics_port=r.int("CELERY_METRICS_PORT", 0, 0, 65535),
        celery_beat_schedule_file=_beat_schedule_file(r),
    )


def _beat_schedule_file(r: _Reader) -> str:
    """Beat's state file: outside the checkout (celery's default is the working directory), in the
    user's XDG state directory unless CELERY_BEAT_SCHEDULE_FILE says where."""
    state_home = r.str("XDG_STATE_HOME") or str(Path(r.str("HOME") or _home()) / ".local" / "state")
    path = r.str("CELERY_BEAT_SCHEDULE_FILE", str(Path(state_home) / "coinlink" / "celerybeat-schedule"))
    if not Path(path).is_absolute():
        raise ConfigError("CELERY_BEAT_SCHEDULE_FILE", f"must be an absolute path, got {path!r}")
    return path


def _home() -> str:
    try:
        return str(Path.home())
    except RuntimeError:  # no HOME and no passwd entry (an arbitrary container UID): nothing to expand
        return "/tmp"  # noqa: S108  # nosec B108 - only where there is no home at all


def _quotes(r: _Reader) -> tuple[str, ...]:
    quotes = tuple(q.lower() for q in r.list("MARKET_QUOTES", QUOTES))
    unknown = [q for q in quotes if q not in QUOTES]
    if unknown or not quotes:
        raise ConfigError("MARKET_QUOTES", f"must be a comma list of {', '.join(QUOTES)}")
    return quotes


def _frontend_url(r: _Reader, production: bool) -> str:
    """Where the SPA lives: links in account mail (reset, verification) point there, so production must say."""
    value = r.url("FRONTEND_URL", ("https",) if production else ("http", "https"))
    if value is not None and not urlparse(value).hostname:
        raise ConfigError("FRONTEND_URL", "must be an absolute URL like https://app.example.com")
    if value is None and production:
        raise ConfigError("FRONTEND_URL", "is required in production (the SPA's https:// address, for links in mail)")
    return (value or "http://localhost:5173").rstrip("/")


def _rate(r: _Reader, name: str, default: str) -> str:
    value = r.str(name, default)
    if not re.fullmatch(r"\d+/\d*[smhd]", value):
        raise ConfigError(name, f"must be a rate like 100/m, got {value!r}")
    return value
