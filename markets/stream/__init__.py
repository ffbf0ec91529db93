"""Live prices from the Coinbase Exchange WebSocket feed (docs/markets.md, "Live ticks").

messages: parse and validate feed messages · client: the connection, backoff and watchdog ·
coalescer: newest trade per product per flush · lease: which replica publishes · publish: the
writes (cache every flush, database once per poll period) · status: state log and /readyz ·
runner: all of it on one loop, as a process or an embedded thread.
"""
