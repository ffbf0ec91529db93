"""The hook the ingest announces changed tickers through; coinlink.wiring decides who listens.

`tickers_changed(quote, tickers, previous_prices, observed_at)`, sent after the ingest's
transaction commits: `tickers` are contract ticker dicts (only those whose price changed),
`previous_prices` maps symbol to the price before this cycle (None when there was none), and
`observed_at` is the epoch time the upstream answer reached the ingest (for feed latency).

`tickers_staleness(quote, tickers)`, sent when tickers go stale (no provider has answered for them
for MARKET_STALE_SECONDS) or come back: `tickers` are contract ticker dicts with their `stale`
flag. No price moved, so it is for live clients only, not for alert evaluation.
"""

from django.dispatch import Signal

tickers_changed = Signal()
tickers_staleness = Signal()
