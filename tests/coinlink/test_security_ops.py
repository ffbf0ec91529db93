"""Security posture through real endpoints: production headers, CORS, per-IP limits, hostile bodies."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from tests.coinlink.procs import PYTHON, ROOT, production_env

LOGIN = "/api/v2/auth/login"

_PROBE = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.conf import settings
    from django.test import Client

    client = Client()
    out = {"settings": {name: getattr(settings, name, None) for name in (
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "DEBUG")}}
    for name, path, headers in json.loads(sys.argv[1]):
        response = client.get(path, **headers)
        out[name] = {"status": response.status_code, "headers": dict(response.headers),
                     "cookies": {key: morsel.output() for key, morsel in response.cookies.items()}}
    print(json.dumps(out))
    """
)

_REQUESTS = [
    ("https_health", "/health", {"HTTP_HOST": "api.example.com", "HTTP_X_FORWARDED_PROTO": "https"}),
    ("https_api", "/api/v2/nowhere", {"HTTP_HOST": "api.example.com", "HTTP_X_FORWARDED_PROTO": "https"}),
    ("http_api", "/api/v2/nowhere", {"HTTP_HOST": "api.example.com", "HTTP_X_FORWARDED_PROTO": "http"}),
    ("http_health", "/health", {"HTTP_HOST": "api.example.com"}),
    ("admin_login", "/admin/login/", {"HTTP_HOST": "api.example.com", "HTTP_X_FORWARDED_PROTO": "https"}),
    ("api_docs", "/api/docs", {"HTTP_HOST": "api.example.com", "HTTP_X_FORWARDED_PROTO": "https"}),
    ("foreign_host", "/api/v2/nowhere", {"HTTP_HOST": "evil.example.net", "HTTP_X_FORWARDED_PROTO": "https"}),
]


def _production(**extra: str) -> dict[str, str]:
    return production_env(
        ALLOWED_HOSTS="api.example.com",
        SECURE_SSL_REDIRECT=None,  # production's own default: these tests check the redirect
        LOG_LEVEL=os.environ.get("LOG_LEVEL"),  # the test run's own, as the other settings here
        PROMETHEUS_MULTIPROC_DIR=os.environ.get("PROMETHEUS_MULTIPROC_DIR"),
        # Closed ports: these requests must not need either service.
        DATABASE_URL="postgres://nobody@127.0.0.1:9/none",
        REDIS_URL="redis://127.0.0.1:9/0",
        SENTRY_DSN=None,
        DJANGO_SETTINGS_MODULE="coinlink.settings",
        **extra,
    )


def _probe(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [PYTHON, "-c", _PROBE, json.dumps(_REQUESTS)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def behind_tls_proxy() -> dict:
    return _probe(_production(SECURE_PROXY_SSL_HEADER="true"))


@pytest.fixture(scope="module")
def without_proxy_header() -> dict:
    return _probe(_production())


def test_it_passes_the_deploy_check_at_warning_level_under_production_settings():
    result = subprocess.run(
        [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_it_sends_hsts_nosniff_referrer_policy_and_frame_denial_over_https(behind_tls_proxy):
    headers = behind_tls_proxy["https_health"]["headers"]
    assert behind_tls_proxy["https_health"]["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    api = behind_tls_proxy["https_api"]
    assert api["status"] == 404 and api["headers"]["X-Frame-Options"] == "DENY"


def test_it_uses_secure_cookies_and_no_debug_in_production(behind_tls_proxy):
    assert behind_tls_proxy["settings"]["SESSION_COOKIE_SECURE"] is True
    assert behind_tls_proxy["settings"]["CSRF_COOKIE_SECURE"] is True
    assert behind_tls_proxy["settings"]["DEBUG"] is False
    login = behind_tls_proxy["admin_login"]
    assert login["status"] == 200
    cookie = login["cookies"]["csrftoken"]
    assert "Secure" in cookie and "SameSite=Lax" in cookie


def test_it_sends_the_content_security_policy_on_pages_and_api_answers(behind_tls_proxy):
    for name in ("admin_login", "api_docs", "https_api", "https_health"):
        assert behind_tls_proxy[name]["status"] in (200, 404), name
        policy = behind_tls_proxy[name]["headers"]["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self';" in f"{policy};", name


def test_it_redirects_plain_http_api_calls_but_not_probes(behind_tls_proxy):
    assert behind_tls_proxy["http_api"]["status"] == 301
    assert behind_tls_proxy["http_api"]["headers"]["Location"].startswith("https://api.example.com/")
    assert behind_tls_proxy["http_health"]["status"] == 200
    assert "Strict-Transport-Security" not in behind_tls_proxy["http_health"]["headers"]


def test_it_trusts_x_forwarded_proto_only_when_configured(behind_tls_proxy, without_proxy_header):
    assert behind_tls_proxy["settings"]["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert without_proxy_header["settings"]["SECURE_PROXY_SSL_HEADER"] is None
    # A client-sent X-Forwarded-Proto: https does not make the request secure: redirect, no HSTS.
    assert without_proxy_header["https_api"]["status"] == 301
    assert "Strict-Transport-Security" not in without_proxy_header["https_health"]["headers"]


def test_it_refuses_a_foreign_host_in_the_error_shape(behind_tls_proxy):
    assert behind_tls_proxy["foreign_host"]["status"] == 400
    assert behind_tls_proxy["foreign_host"]["headers"]["Content-Type"] == "application/json"


# --- CORS ------------------------------------------------------------------------------------


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    return settings


def _preflight(client, origin: str):
    return client.options(
        LOGIN,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,authorization",
    )


@pytest.mark.django_db
def test_it_answers_a_preflight_from_an_allowed_origin_exactly_and_without_credentials(client, cors):
    response = _preflight(client, "https://app.example.com")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.django_db
def test_it_gives_a_foreign_origin_no_cors_grant(client, cors):
    response = _preflight(client, "https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in response
    simple = client.get("/api/v2/nowhere", HTTP_ORIGIN="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in simple


@pytest.mark.django_db
def test_it_exposes_the_request_id_and_retry_after_to_allowed_origins(client, cors):
    response = client.get("/api/v2/nowhere", HTTP_ORIGIN="https://app.example.com")
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    exposed = response["Access-Control-Expose-Headers"].lower()
    assert "x-request-id" in exposed and "retry-after" in exposed


# --- rate limits -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_market_reads_and_other_api_calls_have_separate_per_ip_budgets(client, settings):
    settings.RATELIMIT_DEFAULT = "3/m"
    settings.RATELIMIT_MARKET = "6/m"
    market = [client.get("/api/v2/market/ticker").status_code for _ in range(6)]
    assert 429 not in market
    other = [client.get("/api/v2/nowhere").status_code for _ in range(3)]
    assert other == [404, 404, 404]
    refused = client.get("/api/v2/market/ticker")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["code"] == "rate_limited" and refused.json()["trace_id"] == refused["X-Request-ID"]
    assert client.get("/api/v2/nowhere").status_code == 429
    # Another client IP is unaffected.
    assert client.get("/api/v2/nowhere", REMOTE_ADDR="198.51.100.7").status_code == 404


@pytest.mark.django_db
def test_probes_are_never_rate_limited(client, settings):
    settings.RATELIMIT_DEFAULT = "1/m"
    assert {client.get("/health").status_code for _ in range(5)} == {200}


# --- hostile bodies through a real endpoint ----------------------------------------------------


def _post(client, body: bytes, content_type: str = "application/json"):
    return client.generic("POST", LOGIN, body, content_type=content_type)


def _assert_error(response, status: int):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["detail"] and body["code"] and body["trace_id"] == response["X-Request-ID"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 5000 + b"]" * 5000, 400),  # deep nesting
        (json.dumps({"email": "a@example.com", "password": "x\u0000y"}).encode(), 400),  # NUL in a string
        (b'{"email": "a@example.com", "password": "\xff\xfe"}', 400),  # invalid UTF-8
        (b'{"email": "a@example.com", "password": NaN}', 400),
        (b'{"email": ', 400),  # truncated
        (b'{"email": "a@example.com", "password": ' + b"9" * 6000 + b"}", 400),  # integer past Python's limit
        (b'{"email": ["a@example.com"], "password": {"x": 1}}', 400),  # wrong types
        (b"[1, 2, 3]", 400),  # not an object
    ],
    ids=["deep", "nul", "invalid-utf8", "nan", "truncated", "huge-integer", "wrong-types", "array"],
)
def test_it_refuses_hostile_json_with_a_4xx_in_the_error_shape(client, body, status):
    _assert_error(_post(client, body), status)


@pytest.mark.django_db
def test_it_refuses_a_body_over_the_limit_with_413(client, settings):
    huge = json.dumps({"email": "a@example.com", "password": "p" * (settings.MAX_REQUEST_BODY_BYTES + 10)})
    _assert_error(_post(client, huge.encode()), 413)


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_it_refuses_a_wrong_content_type_with_415(client, content_type):
    _assert_error(_post(client, b"email=a@example.com&password=x", content_type), 415)


@pytest.mark.django_db
def test_probes_answer_a_replica_addressed_by_ip_but_the_api_does_not(client, settings):
    settings.ALLOWED_HOSTS = ["api.example.com"]
    for path in ("/health", "/livez", "/metrics", "/metrics/"):
        assert client.get(path, HTTP_HOST="10.0.3.7:8000").status_code == 200, path
    assert client.get("/readyz", HTTP_HOST="10.0.3.7:8000").status_code in (200, 503)
    refused = client.get("/api/v2/nowhere", HTTP_HOST="10.0.3.7:8000")
    assert refused.status_code == 400
    assert client.get("/admin/login/", HTTP_HOST="10.0.3.7:8000").status_code == 400


@pytest.mark.django_db
def test_an_authenticated_user_has_one_budget_across_addresses(owner_client, other_client, settings):
    settings.RATELIMIT_USER = "3/m"
    statuses = [
        owner_client.get("/api/v2/user/profile", REMOTE_ADDR=f"198.51.100.{n}").status_code for n in range(1, 5)
    ]
    assert statuses == [200, 200, 200, 429]
    refused = owner_client.get("/api/v2/user/profile", REMOTE_ADDR="203.0.113.50")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused.json()["code"] == "rate_limited"
    assert other_client.get("/api/v2/user/profile").status_code == 200  # another user is unaffected
