"""Assertions shared by the test suites."""

from __future__ import annotations


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    """The contract's one error shape: JSON with `detail`, `code`, and the request id as `trace_id`."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["trace_id"] == response["X-Request-ID"]
    if code:
        assert body["code"] == code
    return body
