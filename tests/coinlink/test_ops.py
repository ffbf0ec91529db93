import pytest
from django.db import OperationalError

pytestmark = pytest.mark.django_db


def test_health_answers_ok_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/livez", "/health/", "/livez/"])
def test_health_aliases_and_trailing_slashes_answer_the_same(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency_with_its_latency(client):
    body = client.get("/readyz").json()
    for name in ("database", "cache", "channel_layer", "broker", "market_data"):
        assert name in body["checks"]
        assert "latency_ms" in body["checks"][name]
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"


def test_readyz_is_503_when_the_database_is_down(client, monkeypatch):
    from coinlink import ops

    def down():
        raise OperationalError("connection refused")

    monkeypatch.setitem(ops.CHECKS, "database", down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert response.json()["checks"]["database"]["status"] == "fail"


def test_readyz_names_a_failure_by_type_and_logs_the_drivers_message(client, monkeypatch, caplog):
    from coinlink import ops

    def down():
        raise OperationalError('connection to server at "postgres" (172.18.0.2) failed: password authentication failed')

    monkeypatch.setitem(ops.CHECKS, "database", down)
    response = client.get("/readyz")

    assert response.json()["checks"]["database"]["error"] == "OperationalError"
    assert "172.18.0.2" not in response.content.decode()
    assert any("172.18.0.2" in record.getMessage() for record in caplog.records)


def test_readyz_is_degraded_not_failed_when_only_a_soft_check_fails(client, monkeypatch):
    from coinlink import ops

    monkeypatch.setitem(ops.CHECKS, "market_data", lambda: {"status": "stale", "age_seconds": 999})
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


def test_metrics_are_in_prometheus_text_format(client):
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "# TYPE coinlink_http_request_duration_seconds histogram" in text
    assert 'le="0.15"' in text and 'le="0.4"' in text


def test_metrics_can_be_limited_to_a_bearer_token(client, settings):
    settings.METRICS_TOKEN = "scrape-token-123"
    assert client.get("/metrics").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123")
    assert response.status_code == 200


def test_metrics_can_be_limited_to_networks(client, settings):
    import ipaddress

    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_unconfigured_metrics_are_open_in_development_and_only_to_this_host_in_production(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", ()
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200

    settings.PRODUCTION = True
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_the_openapi_schema_documents_the_probe_endpoints_as_api_md_does(client):
    paths = client.get("/api/schema?format=json").json()["paths"]

    for path in ("/health", "/livez", "/readyz", "/metrics"):
        assert list(paths[path]) == ["get"], path
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    assert client.get("/api/docs").status_code == 200


def test_admin_login_page_is_served(client):
    assert client.get("/admin/login/").status_code == 200
