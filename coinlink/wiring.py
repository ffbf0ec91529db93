"""The one place that connects the apps' hooks, so dependencies point one way.

`markets` announces changed tickers and `accounts` announces sign-ins, password changes and revoked sessions
without knowing who listens; here the project wires those hooks to the WebSocket feed
(`realtime.events`) and to alert evaluation and security notifications (`notifications`). What the
feed needs from markets besides the tickers (the top symbols) is read here and passed in.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("coinlink.wiring")


def on_tickers_changed(sender, *, quote: str, tickers: list[dict], previous_prices: dict, observed_at: float, **kw):
    from notifications.tasks import alerts_evaluate
    from realtime import events

    events.ticker_update_publish(quote=quote, tickers=tickers, observed_at=observed_at, top=_top_symbols())
    alerts_evaluate.delay(
        quote=quote,
        prices=[
            {"symbol": t["symbol"], "price": str(t["price"]), "change_percent_24h": _str(t.get("change_percent_24h"))}
            for t in tickers
        ],
        previous_prices={k: _str(v) for k, v in previous_prices.items()},
    )


def on_tickers_staleness(sender, *, quote: str, tickers: list[dict], **kw):
    from realtime import events

    events.ticker_update_publish(quote=quote, tickers=tickers, observed_at=None, top=_top_symbols())


def on_sessions_revoked(sender, *, user_id, session_ids: list, reason: str, **kw):
    from realtime import events

    events.sessions_revoked_publish(user_id=str(user_id), session_ids=[str(s) for s in session_ids], reason=reason)


def on_user_signed_in(sender, *, user, session, new_device: bool, ip_address: str, user_agent: str, **kw):
    if not new_device:
        return
    from notifications.services import security_alert_new_device

    security_alert_new_device(user=user, ip_address=ip_address, user_agent=user_agent)


def on_password_changed(sender, *, user, **kw):
    from notifications.services import security_alert_password_changed

    security_alert_password_changed(user=user)


def _top_symbols() -> list[str] | None:
    """The current top 20 by rank, for sockets that subscribed to nothing; read once per cycle, here, so
    that the feed need not read the market catalogue."""
    from markets.selectors import asset_symbols_top
    from realtime.hub import TOP_LIMIT

    try:
        return list(asset_symbols_top(limit=TOP_LIMIT))
    except Exception:
        logger.warning("top symbols unavailable; hubs keep the previous list", exc_info=True)
        return None


def _str(value) -> str | None:
    return None if value is None else str(value)


def connect() -> None:
    from accounts import signals as accounts_signals
    from markets import signals as markets_signals

    markets_signals.tickers_changed.connect(on_tickers_changed, dispatch_uid="coinlink.tickers_changed")
    markets_signals.tickers_staleness.connect(on_tickers_staleness, dispatch_uid="coinlink.tickers_staleness")
    accounts_signals.sessions_revoked.connect(on_sessions_revoked, dispatch_uid="coinlink.sessions_revoked")
    accounts_signals.user_signed_in.connect(on_user_signed_in, dispatch_uid="coinlink.user_signed_in")
    accounts_signals.password_changed.connect(on_password_changed, dispatch_uid="coinlink.password_changed")
