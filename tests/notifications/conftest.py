"""Fixtures for the notifications tests: a small market catalogue and a recorder of live pushes."""

from __future__ import annotations

import pytest


@pytest.fixture
def catalogue(db):
    """BTC, ETH and SOL active in the markets catalogue, DOGE delisted (whatever the shipped catalogue says)."""
    from markets.models import Asset
    from markets.selectors import active_symbols_forget

    for rank, (symbol, name, active) in enumerate(
        [("BTC", "Bitcoin", True), ("ETH", "Ethereum", True), ("SOL", "Solana", True), ("DOGE", "Dogecoin", False)],
        start=1,
    ):
        Asset.objects.update_or_create(
            symbol=symbol,
            defaults={"is_active": active},
            create_defaults={"name": name, "coingecko_id": name.lower(), "rank": rank, "is_active": active},
        )
    active_symbols_forget()


@pytest.fixture
def pushes(monkeypatch):
    """Every live push, recorded on its way into the real realtime.events.notification_push_many."""
    from realtime import events

    calls: list[dict] = []
    real = events.notification_push_many

    def recording(*, notifications: list[tuple[str, dict]]) -> None:
        calls.extend({"user_id": user_id, "notification": n} for user_id, n in notifications)
        real(notifications=notifications)

    monkeypatch.setattr(events, "notification_push_many", recording)
    return calls
