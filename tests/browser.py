"""Headless Chromium for the page tests, and what it reported: console errors and every URL it asked for."""

from __future__ import annotations

import json
import shutil
import time
from urllib.parse import urlsplit

import pytest

# A page test: the real server process on the test database (committed rows), Redis for the feed.
PAGE_TEST = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.browser,
    pytest.mark.slow,
]

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
)  # fmt: skip


def chromium():
    """A Chromium that logs its console (a CSP violation is SEVERE there) and its DevTools network events."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("chromium and chromedriver are required: run scripts/ci-extras")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(20)
    return driver


def wait(predicate, timeout: float = 10.0):
    """The first truthy value of `predicate()`, polled; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("the page did not get there in time")


def console_errors(driver) -> list[str]:
    """The console's SEVERE messages since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked for since the last call: pages, their files, fetches and WebSockets."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def off_host(urls: list[str], host: str = "127.0.0.1") -> list[str]:
    """The URLs among `urls` that would leave `host` (data: URLs never leave the page)."""
    return [url for url in urls if not url.startswith("data:") and urlsplit(url).hostname != host]
