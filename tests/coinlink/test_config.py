import subprocess
import sys

import pytest

from coinlink.config import ConfigError, load

STRONG_SECRET = "s3cr3t-" + "x" * 20 + "abcdefghijklmnopqrstuvwxyz0123456789"
STRONG_JWT = "jwt-key-ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789"
PRODUCTION = {
    "COINLINK_ENV": "production",
    "SECRET_KEY": STRONG_SECRET,
    "JWT_SIGNING_KEY": STRONG_JWT,
    "ALLOWED_HOSTS": "api.example.com",
    "DATABASE_URL": "postgres://u:p@db:5432/coinlink",
    "REDIS_URL": "redis://redis:6379/0",
    "FRONTEND_URL": "https://app.example.com",
}


def test_it_runs_with_nothing_configured_in_development():
    config = load({})
    assert config.env == "development"
    assert config.embedded
    assert config.database_url is None
    assert len(config.secret_key) >= 50


def test_it_keeps_the_development_secret_stable_across_loads():
    assert load({}).secret_key == load({}).secret_key
    assert load({}).secret_key != load({}).jwt_signing_key


def test_it_accepts_a_complete_production_environment():
    config = load(PRODUCTION)
    assert config.production and not config.embedded
    assert config.log_format == "json"
    assert config.secure_ssl_redirect


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "JWT_SIGNING_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "FRONTEND_URL"]
)
def test_it_refuses_production_without_a_required_variable(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError) as error:
        load(env)
    assert error.value.name == missing


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", "short"),
        ("SECRET_KEY", "django-insecure-" + "a1b2c3d4e5" * 6),
        ("JWT_SIGNING_KEY", "too-short"),
        ("JWT_SIGNING_KEY", STRONG_SECRET),
        ("ALLOWED_HOSTS", "*"),
        ("FRONTEND_URL", "http://app.example.com"),  # reset links in mail must not travel in clear
        ("FRONTEND_URL", "https:/app"),
    ],
)
def test_it_refuses_weak_or_unsafe_production_values(name, value):
    with pytest.raises(ConfigError) as error:
        load({**PRODUCTION, name: value})
    assert error.value.name == name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MARKET_POLL_SECONDS", "soon"),
        ("MARKET_POLL_SECONDS", "0"),
        ("BCRYPT_ROUNDS", "40"),
        ("JWT_ACCESS_TTL", "forever"),
        ("DEBUG", "maybe"),
        ("COINLINK_ENV", "staging"),
        ("DATABASE_URL", "mysql://x/y"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("CORS_ALLOWED_ORIGINS", "*"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example.com/path"),
        ("MARKET_QUOTES", "usd,jpy"),
        ("RATELIMIT_DEFAULT", "lots"),
        ("SENTRY_TRACES_SAMPLE_RATE", "2"),
        ("COINBASE_STREAM_URL", "https://ws-feed.exchange.coinbase.com"),
        ("MARKET_STREAM_ENABLED", "sometimes"),
        ("MARKET_STREAM_FLUSH_MS", "10"),
        ("MARKET_STREAM_IDLE_SECONDS", "nan"),
        ("MARKET_STREAM_LEASE_SECONDS", "0"),
    ],
)
def test_it_names_the_variable_with_a_bad_value(name, value):
    with pytest.raises(ConfigError) as error:
        load({name: value})
    assert error.value.name == name
    assert name in str(error.value)


def test_it_parses_durations():
    config = load({"JWT_ACCESS_TTL": "5m", "JWT_REFRESH_TTL": "2d"})
    assert config.jwt_access_ttl == 300
    assert config.jwt_refresh_ttl == 2 * 86400


def test_live_ticks_are_on_by_default_against_coinbase_with_a_one_second_flush():
    config = load({})
    assert config.market_stream_enabled and config.coinbase_stream_url == "wss://ws-feed.exchange.coinbase.com"
    assert (config.market_stream_flush_ms, config.market_stream_idle_seconds) == (1000, 10.0)
    assert config.market_stream_backoff_max_seconds == 60.0


def test_it_defaults_staleness_to_three_polls():
    assert load({"MARKET_POLL_SECONDS": "10"}).market_stale_seconds == 30


def test_the_process_exits_with_one_clear_line_on_a_weak_production_secret(tmp_path):
    env = {**PRODUCTION, "SECRET_KEY": "weak", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "CoinLink configuration error: SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_process_exits_when_production_has_no_secret():
    env = {k: v for k, v in PRODUCTION.items() if k != "JWT_SIGNING_KEY"} | {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "JWT_SIGNING_KEY: is required in production" in result.stderr


def test_beats_schedule_file_defaults_to_the_state_directory_and_must_be_absolute():
    assert (
        load({"HOME": "/home/ada"}).celery_beat_schedule_file == "/home/ada/.local/state/coinlink/celerybeat-schedule"
    )
    assert load({"XDG_STATE_HOME": "/srv/state"}).celery_beat_schedule_file == "/srv/state/coinlink/celerybeat-schedule"
    with pytest.raises(ConfigError) as error:
        load({"CELERY_BEAT_SCHEDULE_FILE": "celerybeat-schedule"})
    assert error.value.name == "CELERY_BEAT_SCHEDULE_FILE"


def test_account_links_and_token_lifetimes_have_safe_defaults_and_read_durations():
    config = load({"FRONTEND_URL": "http://localhost:3000/", "PASSWORD_RESET_TTL": "30m", "EMAIL_VERIFY_TTL": "2d"})
    assert config.frontend_url == "http://localhost:3000"
    assert (config.password_reset_ttl, config.email_verify_ttl) == (1800, 2 * 86400)
    defaults = load({})
    assert (defaults.password_reset_ttl, defaults.email_verify_ttl) == (3600, 48 * 3600)
    with pytest.raises(ConfigError) as error:
        load({"PASSWORD_RESET_TTL": "10s"})
    assert error.value.name == "PASSWORD_RESET_TTL"
