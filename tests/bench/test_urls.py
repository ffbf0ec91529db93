"""bench.settings: the product's settings and URLs plus the REST bench's baseline view, served by bench."""

from __future__ import annotations

import importlib

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def bench_urls(settings):
    settings.ROOT_URLCONF = importlib.import_module("bench.settings").ROOT_URLCONF


def test_the_bench_serves_its_baseline_view_itself(bench_urls, client):
    response = client.get("/api/bench/constant")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert len(response.content) == 2048


def test_the_bench_serves_the_product_unchanged_behind_it(bench_urls, client):
    assert client.get("/health").json() == {"status": "ok"}
    missing = client.get("/api/bench/nothing")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"  # the contract's error pages
