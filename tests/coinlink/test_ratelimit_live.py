"""The admin sign-in limit through a real gunicorn behind a (trusted) proxy address: a look-alike
spelling of a locked account's username meets that account's counter, not a fresh one."""

from __future__ import annotations

import http.client
import re
import time
from urllib.parse import urlencode

import pytest

from tests.coinlink.procs import gunicorn_on_test_database, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "admin passphrase 99"


@pytest.fixture(scope="module")
def server(django_db_setup):
    # Each attempt comes "from" its own X-Forwarded-For address, as behind the proxy.
    with gunicorn_on_test_database(WEB_CONCURRENCY="2", TRUSTED_PROXIES="127.0.0.1/32") as port:
        yield port


def _request(port: int, method: str, headers: dict, body: str | None = None) -> tuple[int, dict, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, "/admin/login/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def _sign_in(port: int, username: str, password: str, client_ip: str) -> int:
    """The admin form as a browser submits it: its CSRF cookie and token first."""
    _, headers, page = _request(port, "GET", {"X-Forwarded-For": client_ip})
    cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"]).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password})
    status, _, _ = _request(
        port,
        "POST",
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookie}",
            "X-Forwarded-For": client_ip,
        },
        form,
    )
    return status


def _away_from_the_window_edge(key: str, seconds: float = 20.0) -> None:
    """The test's attempts must fall in one rate-limit window of the account's counter."""
    from django_ratelimit.core import _get_window

    wait_until(lambda: _get_window(key, 60) - time.time() >= seconds, timeout=65, interval=0.5)


@pytest.mark.parametrize(
    "spelling",
    [
        "\uff41\uff44\uff4d\uff49\uff4e@example.com",  # full-width
        "\U0001d68a\U0001d68d\U0001d696\U0001d692\U0001d697@example.com",  # mathematical monospace
    ],
)
def test_a_look_alike_username_cannot_sign_in_once_the_account_is_locked(server, transactional_db, spelling):
    from accounts.models import User

    User.objects.create_superuser(email="admin@example.com", password=PASSWORD)
    _away_from_the_window_edge("admin@example.com")
    assert _sign_in(server, spelling, PASSWORD, "198.51.100.200") == 302  # the premise: it is the account

    statuses = [_sign_in(server, "admin@example.com", "guess", f"198.51.100.{n}") for n in range(9)]
    assert statuses == [200] * 9  # the form again, wrong password (the tenth try was the premise's)

    assert _sign_in(server, spelling, PASSWORD, "192.0.2.77") == 429
