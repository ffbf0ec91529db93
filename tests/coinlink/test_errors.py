import json

import pytest

from tests.helpers import assert_error_shape

pytestmark = pytest.mark.django_db


def test_an_unknown_api_path_is_a_json_404(client):
    assert_error_shape(client.get("/api/v2/nowhere"), 404, "not_found")


def test_every_response_carries_a_request_id(client):
    response = client.get("/health")
    assert len(response["X-Request-ID"]) >= 16


def test_a_sane_client_request_id_is_echoed(client):
    response = client.get("/api/v2/nowhere", HTTP_X_REQUEST_ID="spa-abc-123")
    assert response["X-Request-ID"] == "spa-abc-123"
    assert response.json()["trace_id"] == "spa-abc-123"


def test_a_hostile_client_request_id_is_replaced(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="<script>" + "x" * 300)
    assert response["X-Request-ID"] != "<script>" + "x" * 300
    assert response["X-Request-ID"].isalnum()


def test_nul_bytes_in_the_query_are_refused(client):
    assert_error_shape(client.get("/api/v2/nowhere?q=a%00b"), 400, "invalid_characters")


def test_an_oversized_body_is_413(client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1024
    body = json.dumps({"x": "a" * 5000})
    response = client.post("/api/v2/nowhere", data=body, content_type="application/json")
    assert_error_shape(response, 413, "payload_too_large")


def test_the_server_error_view_answers_in_the_error_shape(rf):
    from coinlink.errors import server_error

    response = server_error(rf.get("/api/x"))
    assert response.status_code == 500
    body = json.loads(response.content)
    assert body["code"] == "server_error"
