"""The live page at `/` in headless Chromium, against `manage.py serve` (what `scripts/run` starts)."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async

from realtime import events
from tests.browser import PAGE_TEST
from tests.browser import wait as _wait
from tests.realtime.servers import EmbeddedServer, ServerProcess, free_port

pytestmark = PAGE_TEST


def _price(driver, symbol: str) -> str | None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:  # the page re-renders rows on every frame; a row may be replaced between find and read
        cells = driver.find_elements(By.CSS_SELECTOR, f'tr[data-symbol="{symbol}"] td.price')
        return cells[0].text if cells else None
    except StaleElementReferenceException:
        return None


async def test_it_shows_the_table_and_a_price_change_arriving_over_the_websocket(store_prices, browser, tmp_path):
    await store_prices({"BTC": "65000", "ETH": "3000"})
    with ServerProcess("serve") as server:

        def scenario():
            browser.get(server.http_url + "/")
            assert "CoinLink" in browser.title
            _wait(lambda: browser.find_element("id", "status").get_attribute("data-state") == "live")
            assert _wait(lambda: _price(browser, "BTC")) == "$65,000.00"
            assert _wait(lambda: _price(browser, "ETH")) == "$3,000.00"

            ticker = {"symbol": "BTC", "name": "Bitcoin", "price": 65432.1, "change_24h": 432.1,
                      "change_percent_24h": 0.66, "volume_24h": 1e9, "market_cap": 1.3e12, "rank": 1,
                      "last_updated": "2026-11-25T15:00:00Z", "source": "coingecko", "stale": False}  # fmt: skip
            events.ticker_update_publish(quote="usd", tickers=[ticker], observed_at=time.time())
            assert _wait(lambda: _price(browser, "BTC") == "$65,432.10")
            assert browser.find_element("id", "seq").text == "#2"
            browser.save_screenshot(str(tmp_path / "live.png"))

        await sync_to_async(scenario, thread_sensitive=False)()


async def test_it_goes_live_on_a_port_other_than_8000_with_the_development_origins(store_prices, browser):
    await store_prices({"BTC": "65000"})
    # WS_ALLOWED_ORIGINS unset, as after `PORT=8765 scripts/run`: its defaults name port 8000 only.
    with ServerProcess("serve", WS_ALLOWED_ORIGINS="") as server:
        assert server.port != 8000

        def scenario():
            browser.get(server.http_url + "/")
            _wait(lambda: browser.find_element("id", "status").get_attribute("data-state") == "live")
            assert _wait(lambda: _price(browser, "BTC")) == "$65,000.00"

        await sync_to_async(scenario, thread_sensitive=False)()
        assert "WebSocket handshake" not in server.output()  # nothing was refused


def test_offline_it_says_in_words_that_the_providers_cannot_be_reached(transactional_db, browser, tmp_path):
    from markets.catalogue import catalogue_load

    catalogue_load()
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: every provider call is refused
    env = {"REDIS_URL": "", "COINGECKO_BASE_URL": closed, "COINBASE_EXCHANGE_BASE_URL": closed,
           "MARKET_POLL_SECONDS": "1", "MARKET_QUOTES": "usd"}  # fmt: skip
    with EmbeddedServer("serve", **env) as server:
        browser.get(server.http_url + "/")
        offline = _wait(lambda: browser.find_element("id", "offline").is_displayed(), timeout=30)
        text = browser.find_element("id", "offline").text
        waiting = browser.find_element("id", "empty").is_displayed()
        browser.save_screenshot(str(tmp_path / "offline.png"))
        time.sleep(4)  # a few more failed ingest cycles
        log = server.output()
    assert offline and text == (
        "The price providers cannot be reached (coingecko: ConnectError; coinbase: ConnectError). "
        "There are no prices to show yet; they appear as soon as a provider answers."
    )
    assert not waiting  # "Waiting for the first prices" would be no answer
    assert log.count("providers unreachable") == 1, log[-3000:]
