"""Each HTML page in headless Chromium under its Content-Security-Policy, against `manage.py serve`.

A page passes when it renders, its console has no SEVERE message (a CSP violation is one) and every URL
it asked for, WebSocket included, is on the server's own loopback host. Screenshots go to tmp_path.
"""

from __future__ import annotations

import time

import pytest

from markets.catalogue import catalogue_load
from markets.selectors import asset_symbols_top
from realtime import events
from tests.browser import PAGE_TEST, console_errors, off_host, requested_urls, wait
from tests.factories import UserFactory
from tests.realtime.servers import ServerProcess

pytestmark = PAGE_TEST

BTC = {"symbol": "BTC", "name": "Bitcoin", "price": 65432.1, "change_24h": 432.1, "change_percent_24h": 0.66,
       "volume_24h": 1e9, "market_cap": 1.3e12, "rank": 1, "last_updated": "2026-11-25T15:00:00Z",
       "source": "coingecko", "stale": False}  # fmt: skip


@pytest.fixture
def server(transactional_db):
    with ServerProcess("serve") as running:
        yield running


def _by(css: str):
    from selenium.webdriver.common.by import By

    return By.CSS_SELECTOR, css


def _assert_clean(browser, tmp_path, name: str) -> list[str]:
    """No console error and no request off the host; the URLs requested, for more specific checks."""
    browser.save_screenshot(str(tmp_path / f"{name}.png"))
    assert console_errors(browser) == []
    urls = requested_urls(browser)
    assert off_host(urls) == []
    return urls


def test_the_live_page_shows_prices_from_its_websocket(server, browser, tmp_path):
    catalogue_load()  # the page follows the top 20 tracked assets
    browser.get(server.http_url + "/")
    wait(lambda: browser.find_element(*_by("#status")).get_attribute("data-state") == "live", timeout=20)
    top = list(asset_symbols_top(limit=20))  # announced with the tickers, as coinlink.wiring does for the ingest
    events.ticker_update_publish(quote="usd", tickers=[BTC], observed_at=time.time(), top=top)
    price = wait(lambda: browser.find_elements(*_by('tr[data-symbol="BTC"] td.price')))
    assert price[0].text == "$65,432.10"
    urls = _assert_clean(browser, tmp_path, "live")
    assert server.ws_url in urls  # connect-src 'self' lets the socket to the page's own host through


def test_swagger_ui_lists_the_operations_and_tries_one(server, browser, tmp_path):
    browser.get(server.http_url + "/api/docs")
    operations = wait(lambda: browser.find_elements(*_by(".opblock-summary")), timeout=20)
    assert len(operations) > 20
    health = "#operations-ops-health"
    browser.find_element(*_by(f"{health} .opblock-summary-control")).click()
    wait(lambda: browser.find_elements(*_by(f"{health} .try-out__btn")))[0].click()
    browser.find_element(*_by(f"{health} .execute")).click()
    status = wait(lambda: browser.find_elements(*_by(f"{health} .live-responses-table tbody .response-col_status")))
    assert status[0].text == "200"
    urls = _assert_clean(browser, tmp_path, "swagger-ui")
    assert f"{server.http_url}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in urls
    assert f"{server.http_url}/health" in urls  # "Try it out" reached the API: connect-src 'self'


def test_the_admin_signs_in_and_shows_its_forms(server, browser, tmp_path, password):
    UserFactory(email="staff@example.com", password=password, is_staff=True, is_superuser=True)
    browser.get(server.http_url + "/admin/login/")
    browser.find_element(*_by("#id_username")).send_keys("staff@example.com")
    browser.find_element(*_by("#id_password")).send_keys(password)
    _assert_clean(browser, tmp_path, "admin-login")
    browser.find_element(*_by("#login-form [type=submit]")).click()
    wait(lambda: browser.title.startswith("Site administration"), timeout=20)
    browser.get(server.http_url + "/admin/accounts/user/add/")
    assert wait(lambda: browser.find_elements(*_by("#user_form")))
    _assert_clean(browser, tmp_path, "admin-add-user")


def test_injected_inline_code_and_another_hosts_image_are_refused(server, browser):
    """What an XSS would try: the policy stops it, and the console reports it, so the checks above can see."""
    browser.get(server.http_url + "/")
    ran = browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        "document.head.appendChild(s); return window.injected === 1;"
    )
    assert ran is False
    browser.execute_script("document.body.setAttribute('style', 'background: rgb(255, 0, 0)')")
    assert browser.execute_script("return getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
    browser.execute_script("const i = new Image(); i.id = 'beacon'; i.src = 'https://tracker.example/b.gif';"
                           "document.body.appendChild(i);")  # fmt: skip
    refusals = []
    wait(lambda: len(refusals.extend(console_errors(browser)) or refusals) >= 3)
    assert any("script-src" in message for message in refusals)
    assert any("style-src" in message for message in refusals)
    assert any("img-src" in message and "tracker.example" in message for message in refusals)
