"""The live page shows ticks as they arrive, names each row's source, and says in words when the stream is down."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async

from tests.browser import wait as _wait
from tests.realtime.test_live_page import _price

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.browser, pytest.mark.slow]


def _row(driver, symbol: str) -> dict | None:
    from selenium.common.exceptions import StaleElementReferenceException

    script = """
      var tr = document.querySelector('tr[data-symbol="' + arguments[0] + '"]');
      return tr && {cls: tr.className, source: tr.querySelector('.source').textContent};
    """
    try:
        return driver.execute_script(script, symbol)
    except StaleElementReferenceException:
        return None


def _note(driver) -> str:
    script = "var n = document.querySelector('.stream-note'); return n.hidden ? '' : n.textContent;"
    return driver.execute_script(script)


async def test_the_live_page_flashes_a_tick_names_its_source_and_says_when_the_stream_is_paused(
    feed,
    store_prices,
    embedded_server,
    browser,
):
    await store_prices({"BTC": "60000", "ETH": "3000"})

    def scenario():
        browser.get(f"http://{embedded_server}/")
        assert _wait(lambda: _price(browser, "BTC")) == "$60,000.00"
        assert _row(browser, "BTC")["source"] == "CoinGecko"
        assert "paused" in _wait(lambda: _note(browser))  # nothing streamed yet
        _wait(feed.subscribed, 30)
        feed.tick("BTC-USD", "65000.25")
        _wait(lambda: _price(browser, "BTC") == "$65,000.25")
        row = _row(browser, "BTC")
        assert "flash-up" in row["cls"] and row["source"] == "Coinbase live"
        assert _row(browser, "ETH")["source"] == "CoinGecko"
        assert _note(browser) == ""
        quiet_since = time.monotonic()
        assert "Live ticks from Coinbase are paused" in _wait(lambda: _note(browser), timeout=20)
        assert time.monotonic() - quiet_since > 9  # ten seconds without a streamed price
        feed.tick("BTC-USD", "64000")
        _wait(lambda: _price(browser, "BTC") == "$64,000.00")
        assert "flash-down" in _row(browser, "BTC")["cls"] and _note(browser) == ""

    await sync_to_async(scenario, thread_sensitive=False)()
