"""The URL table: every API route resolves to the view it names, whatever prefix groups it sits in."""

import uuid

import pytest
from django.urls import resolve, reverse

ID = uuid.uuid4()
ROUTES = {
    "/api/v2/market/ticker": "market-ticker",
    "/api/v2/market/movers": "market-movers",
    "/api/v2/market/BTC/price": "market-price",
    "/api/v2/market/BTC/history": "market-history",
    "/api/bitcoin/price": "legacy-bitcoin-price",
    "/api/v2/auth/login": "auth-login",
    "/api/v2/auth/password/reset/confirm": "auth-password-reset-confirm",
    "/api/v2/auth/email/verify/resend": "auth-email-verify-resend",
    "/api/v2/user/profile": "user-profile",
    "/api/v2/user/preferences": "user-preferences",
    f"/api/v2/user/sessions/{ID}": "user-session",
    "/api/v2/alerts": "alert-list",
    f"/api/v2/alerts/{ID}": "alert-detail",
    "/api/v2/notifications": "notification-list",
    "/api/v2/notifications/unread-count": "notification-unread",
    "/api/v2/notifications/read-all": "notification-read-all",
    "/api/v2/notifications/settings": "notification-settings",
    f"/api/v2/notifications/{ID}": "notification-detail",
    f"/api/v2/notifications/{ID}/read": "notification-read",
    "/api/schema": "schema",
    "/health": "health",
}


@pytest.mark.parametrize(("path", "name"), ROUTES.items())
def test_each_path_resolves_to_its_named_view_and_back(path, name):
    match = resolve(path)

    assert match.view_name == name  # the metrics' `view` label
    assert reverse(name, kwargs=match.kwargs) == path


@pytest.mark.parametrize("path", ["/api/v2/notifications/nope", "/api/v2/market/", "/api/v2/alerts/not-a-uuid"])
def test_a_near_miss_is_still_a_404(client, path):
    assert client.get(path).status_code == 404
