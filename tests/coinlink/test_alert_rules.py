"""The Prometheus alert rules: parseable, complete, and each with a runbook that exists."""

from __future__ import annotations

import re

import pytest
import yaml

from coinlink import metrics
from tests.coinlink.procs import ROOT

OPERATIONS = ROOT / "docs/operations.md"


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    document = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _anchors() -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", OPERATIONS.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_every_alert_has_a_severity_a_summary_and_a_runbook_that_exists(rules):
    anchors = _anchors()
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/operations.md#"), rule["alert"]
        assert url.split("#", 1)[1] in anchors, f"{rule['alert']}: no heading for {url}"
        assert url.split("#", 1)[1] == rule["alert"].lower()


def test_alert_names_are_unique_and_durations_valid(rules):
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_the_rules_cover_what_operations_promised(rules):
    exprs = {rule["alert"]: rule["expr"] for rule in rules}
    severities = {rule["alert"]: rule["labels"]["severity"] for rule in rules}
    expected = {
        "CoinLinkHighErrorRate": "critical",  # error rate
        "CoinLinkErrorBudgetBurn": "warning",
        "CoinLinkApiLatencyHigh": "warning",  # latency
        "CoinLinkApiLatencyCritical": "critical",
        "CoinLinkHealthLatencyHigh": "warning",
        "CoinLinkDatabaseDown": "critical",  # database down
        "CoinLinkRedisDown": "critical",  # redis down
        "CoinLinkMemoryHigh": "warning",  # memory
        "CoinLinkWebSocketDrops": "warning",  # websocket drops
        "CoinLinkFeedLatencyHigh": "warning",
        "CoinLinkUpstreamFailures": "warning",  # upstream failures
        "CoinLinkMarketDataStale": "critical",  # stale market data
    }
    for name, severity in expected.items():
        assert severities.get(name) == severity, name
    assert "0.15" in exprs["CoinLinkApiLatencyHigh"] and "0.25" in exprs["CoinLinkFeedLatencyHigh"]
    assert "0.05" in exprs["CoinLinkHealthLatencyHigh"] and "0.01" in exprs["CoinLinkErrorBudgetBurn"]


def test_every_coinlink_metric_an_alert_uses_is_defined(rules):
    defined = set()
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        if name:
            defined |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    for rule in rules:
        for used in re.findall(r"\b(coinlink_[a-z_]+)", rule["expr"]):
            assert used in defined, f"{rule['alert']} uses undefined metric {used}"


def test_the_expressions_have_balanced_brackets(rules):
    pairs = {")": "(", "]": "[", "}": "{"}
    for rule in rules:
        stack: list[str] = []
        for char in re.sub(r'"[^"]*"', '""', rule["expr"]):
            if char in "([{":
                stack.append(char)
            elif char in pairs:
                assert stack and stack.pop() == pairs[char], rule["alert"]
        assert not stack, rule["alert"]


def test_prometheus_scrapes_the_services_and_loads_these_rules():
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"coinlink-web", "coinlink-ws", "coinlink-worker", "redis", "postgres"} <= jobs


def test_operations_documents_the_slas():
    text = OPERATIONS.read_text()
    for promise in ("p95 < 150 ms", "p95 < 250 ms", "p95 < 50 ms", "< 1 %"):
        assert promise in text
