"""Password reset through the API alone: the link arrives by real SMTP, works once, ends every session."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from accounts.models import AccountToken
from tests.accounts.conftest import bearer
from tests.factories import tokens_for

RESET = "/api/v2/auth/password/reset"
CONFIRM = "/api/v2/auth/password/reset/confirm"
NEW_PASSWORD = "lantern meadow quarry 7"


def ask_reset(client, email: str, ip: str = "198.51.100.1"):
    return client.post(RESET, {"email": email}, format="json", REMOTE_ADDR=ip)


def token_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["token"][0]


def confirm(client, link: str, password: str = NEW_PASSWORD):
    return client.post(CONFIRM, {"token": token_of(link), "new_password": password}, format="json")


def reset_link(client, mailbox, user, count: int = 1) -> str:
    assert ask_reset(client, user.email).status_code == 202
    return mailbox.link(mailbox.wait_for(user.email, count)[count - 1], "reset-password")


def signs_in(client, email: str, password: str) -> bool:
    return client.post("/api/v2/auth/login", {"email": email, "password": password}, format="json").status_code == 200


@pytest.mark.postgres
@pytest.mark.redis
def test_a_forgotten_password_is_reset_through_the_mailed_link(anon_client, owner, password, mailbox, worker):
    from notifications.models import Notification

    sessions = [tokens_for(owner), tokens_for(owner)]

    link = reset_link(anon_client, mailbox, owner)
    assert link.startswith("https://app.example.test/reset-password?token=")
    assert len(token_of(link)) >= 43  # 32 random bytes
    response = confirm(anon_client, link)

    assert response.status_code == 204, response.content
    for session in sessions:  # every session ended, the one that asked included
        assert bearer(anon_client, session["access_token"]).get("/api/v2/auth/verify").status_code == 401
    anon_client.credentials()
    assert not signs_in(anon_client, owner.email, password)
    assert signs_in(anon_client, owner.email, NEW_PASSWORD)
    changed = mailbox.wait_for(owner.email, 2)[1]
    assert changed["Subject"] == "[CoinLink] Your password was changed"
    assert changed.get_body(preferencelist=("html",)) is not None  # plain text and HTML
    alert = Notification.objects.get(user=owner, type="security_alert", title="Your password was changed")
    assert alert.priority == "high"
    owner.refresh_from_db()
    assert owner.is_verified  # the link came to the address: it is proven


@pytest.mark.postgres
@pytest.mark.redis
def test_known_and_unknown_addresses_get_the_same_answer_and_only_an_account_gets_mail(
    anon_client, owner, mailbox, worker
):
    unknown = ask_reset(anon_client, "nobody@example.com")
    known = ask_reset(anon_client, owner.email)

    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    mailbox.wait_for(owner.email)  # the solo worker ran the unknown address's task first
    assert [m["To"] for m in mailbox.messages] == [owner.email]
    assert not AccountToken.objects.exclude(user=owner).exists()


@pytest.mark.redis  # embedded runs tasks inside the request: only a worker makes both paths equal
def test_known_and_unknown_addresses_take_about_the_same_time(anon_client, owner, settings):
    """No enumeration by timing: both only enqueue the same task; the account is looked up by the worker."""
    settings.RATELIMIT_ENABLE = False
    durations: dict[str, list[float]] = {"known": [], "unknown": []}
    for n in range(15):
        for kind, email in (("known", owner.email), ("unknown", f"nobody{n}@example.com")):
            started = time.perf_counter()
            assert ask_reset(anon_client, email).status_code == 202
            durations[kind].append(time.perf_counter() - started)

    gap = abs(statistics.median(durations["known"]) - statistics.median(durations["unknown"]))
    assert gap < 0.02, durations
    assert not AccountToken.objects.exists()  # nothing about the account was touched in the request


@pytest.mark.postgres
@pytest.mark.redis
def test_a_reset_link_works_once(anon_client, owner, mailbox, worker):
    link = reset_link(anon_client, mailbox, owner)

    assert confirm(anon_client, link).status_code == 204
    replay = confirm(anon_client, link, "another fine passphrase 9")

    assert replay.status_code == 400
    assert replay.json()["code"] == "invalid_token"
    assert set(replay.json()) == {"detail", "code", "trace_id"}
    assert signs_in(anon_client, owner.email, NEW_PASSWORD)


@pytest.mark.postgres
@pytest.mark.redis
def test_an_expired_reset_link_is_refused(anon_client, owner, mailbox, worker):
    link = reset_link(anon_client, mailbox, owner)
    AccountToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = confirm(anon_client, link)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


@pytest.mark.postgres
@pytest.mark.redis
def test_a_newer_reset_link_voids_the_older_one(anon_client, owner, mailbox, worker):
    older = reset_link(anon_client, mailbox, owner)
    newer = reset_link(anon_client, mailbox, owner, count=2)

    assert confirm(anon_client, older).json()["code"] == "invalid_token"
    assert confirm(anon_client, newer).status_code == 204


@pytest.mark.postgres
@pytest.mark.redis
def test_a_weak_new_password_is_refused_and_the_link_still_works(anon_client, owner, mailbox, worker):
    link = reset_link(anon_client, mailbox, owner)

    weak = confirm(anon_client, link, "aaaaaaaaaaaa")

    assert weak.status_code == 400
    assert weak.json()["code"] == "validation_error"
    assert "new_password" in weak.json()["errors"]
    assert confirm(anon_client, link).status_code == 204


@pytest.mark.postgres
@pytest.mark.redis
def test_changepassword_ends_every_session_and_voids_pending_reset_links(
    anon_client, owner, mailbox, worker, monkeypatch
):
    import getpass

    from django.core.management import call_command

    session = tokens_for(owner)
    link = reset_link(anon_client, mailbox, owner)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "quiet harbour lighthouse 3")

    call_command("changepassword", owner.email, stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert bearer(anon_client, session["access_token"]).get("/api/v2/auth/verify").status_code == 401
    anon_client.credentials()
    assert confirm(anon_client, link).json()["code"] == "invalid_token"
    assert mailbox.wait_for(owner.email, 2)[1]["Subject"] == "[CoinLink] Your password was changed"


def test_a_token_never_sent_is_refused_in_the_contract_shape(anon_client, owner):
    response = anon_client.post(CONFIRM, {"token": "A" * 43, "new_password": NEW_PASSWORD}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


def test_only_a_hash_of_the_token_is_stored(owner):
    import hashlib

    from accounts import onetime

    token = onetime.token_issue(user=owner, purpose="password_reset", email=owner.email, ttl_seconds=60)

    stored = AccountToken.objects.get(user=owner)
    assert token not in stored.digest
    assert stored.digest == hashlib.sha256(token.encode()).hexdigest()


def test_two_confirms_with_one_token_change_the_password_once(owner, password):
    """The claim is a conditional UPDATE: whoever comes second finds the token used."""
    from accounts import onetime
    from accounts.exceptions import InvalidOneTimeToken

    token = onetime.token_issue(user=owner, purpose="password_reset", email=owner.email, ttl_seconds=60)
    assert onetime.token_claim(token=token, purpose="password_reset").user == owner
    with pytest.raises(InvalidOneTimeToken):
        onetime.token_claim(token=token, purpose="password_reset")
    with pytest.raises(InvalidOneTimeToken):  # a token is good for its own purpose only
        onetime.token_claim(
            token=onetime.token_issue(user=owner, purpose="email_verify", email=owner.email, ttl_seconds=60),
            purpose="password_reset",
        )


def test_reset_is_limited_per_address_the_same_for_known_and_unknown(anon_client, owner):
    for email in (owner.email, "nobody@example.com"):
        answers = [ask_reset(anon_client, email, ip=f"198.51.100.{n}").status_code for n in range(4)]
        assert answers == [202, 202, 202, 429], email
    # The address is normalised as at login: another spelling of it is the same address.
    limited = ask_reset(anon_client, " OWNER@Example.COM ", ip="198.51.100.99")
    assert limited.status_code == 429
    assert limited["Retry-After"]


def test_reset_is_limited_per_client_address(anon_client, db):
    answers = [ask_reset(anon_client, f"someone{n}@example.com", ip="203.0.113.5").status_code for n in range(6)]

    assert answers == [202] * 5 + [429]


@pytest.mark.postgres
@pytest.mark.redis
def test_the_link_goes_to_the_stored_address_whatever_spelling_was_typed(anon_client, owner, mailbox, worker):
    """Full-width letters and capitals fold to the account's address; the mail goes to that, never to the input."""
    assert ask_reset(anon_client, " ＯＷＮＥＲ@Example.COM ").status_code == 202

    mailbox.wait_for(owner.email)
    assert [m["To"] for m in mailbox.messages] == ["owner@example.com"]


@pytest.mark.postgres
@pytest.mark.redis
def test_a_password_change_through_the_api_voids_pending_reset_links(anon_client, owner, password, mailbox, worker):
    link = reset_link(anon_client, mailbox, owner)
    session = tokens_for(owner)

    changed = bearer(anon_client, session["access_token"]).post(
        "/api/v2/auth/password", {"old_password": password, "new_password": NEW_PASSWORD}, format="json"
    )
    anon_client.credentials()

    assert changed.status_code == 204
    assert confirm(anon_client, link, "another fine passphrase 9").json()["code"] == "invalid_token"
    assert mailbox.wait_for(owner.email, 2)[1]["Subject"] == "[CoinLink] Your password was changed"


@pytest.mark.postgres
def test_two_simultaneous_confirms_with_one_token_succeed_once(owner, transactional_db):
    import threading

    from django.db import connection

    from accounts import onetime, recovery
    from accounts.exceptions import InvalidOneTimeToken

    token = onetime.token_issue(user=owner, purpose="password_reset", email=owner.email, ttl_seconds=60)
    barrier, outcomes = threading.Barrier(2), []

    def attempt(new_password: str) -> None:
        barrier.wait()
        try:
            recovery.password_reset_confirm(token=token, new_password=new_password)
            outcomes.append("changed")
        except InvalidOneTimeToken:
            outcomes.append("invalid_token")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(p,)) for p in (NEW_PASSWORD, "another fine passphrase 9")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == ["changed", "invalid_token"]
