import pytest
from django.test import RequestFactory

from coinlink.errors import RateLimited, ServiceUnavailable
from coinlink.ratelimit import limit

pytestmark = pytest.mark.django_db


def request(ip="198.51.100.1"):
    return RequestFactory().get("/api/v2/anything", REMOTE_ADDR=ip)


def test_it_allows_up_to_the_rate_then_refuses_with_retry_after():
    for _ in range(3):
        limit(request(), group="t", key="ip", rate="3/m", fail_open=False)
    with pytest.raises(RateLimited) as refused:
        limit(request(), group="t", key="ip", rate="3/m", fail_open=False)
    assert 1 <= refused.value.retry_after <= 60


def test_each_client_ip_has_its_own_budget():
    for _ in range(3):
        limit(request("198.51.100.1"), group="t", key="ip", rate="3/m", fail_open=False)
    limit(request("198.51.100.2"), group="t", key="ip", rate="3/m", fail_open=False)


def test_it_fails_open_or_closed_when_the_store_is_down(monkeypatch):
    import coinlink.ratelimit as rl

    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(rl, "get_usage", down)
    limit(request(), group="reads", key="ip", rate="1/m", fail_open=True)
    with pytest.raises(ServiceUnavailable):
        limit(request(), group="auth", key="ip", rate="1/m", fail_open=False)


def test_the_api_answers_429_in_the_error_shape_past_the_per_ip_limit(client, settings):
    settings.RATELIMIT_DEFAULT = "2/m"
    for _ in range(2):
        client.get("/api/v2/nowhere")
    response = client.get("/api/v2/nowhere")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["code"] == "rate_limited"
