"""Other apps' selectors (markets, accounts) wrapped as awaitables for the feed: async code never calls the ORM."""

from __future__ import annotations

from channels.db import database_sync_to_async


@database_sync_to_async
def ticker_snapshot(*, quote: str, symbols: frozenset[str] | None, limit: int) -> dict:
    """`{"data", "timestamp", "stale"}` for explicit symbols, or the top `limit` by rank."""
    from markets.selectors import ticker_list

    if symbols is None:
        return ticker_list(quote=quote, limit=limit)
    return ticker_list(quote=quote, symbols=sorted(symbols))


@database_sync_to_async
def symbols_known(*, symbols: list[str]) -> set[str]:
    from markets.selectors import symbols_known as known

    return set(known(symbols=symbols))


@database_sync_to_async
def symbols_top(*, limit: int) -> list[str]:
    from markets.selectors import asset_symbols_top

    return list(asset_symbols_top(limit=limit))


@database_sync_to_async
def token_identity(*, token: str) -> tuple[str, str, str]:
    """(user_id, email, session_id) of a valid access token; raises accounts' InvalidToken otherwise."""
    from accounts.selectors import access_token_user

    user, session_id = access_token_user(token=token)
    return str(user.pk), user.email, str(session_id)


@database_sync_to_async
def sessions_ended(*, session_ids: list[str]) -> list[str]:
    """The sessions among `session_ids` that are revoked or expired (cache-backed, no query when warm)."""
    from accounts.selectors import session_is_active

    return [sid for sid in session_ids if not session_is_active(session_id=sid)]
