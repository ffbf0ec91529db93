"""Proving and changing the address: verification at sign-up, resend, an email change confirmed by the new address."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from accounts.models import User
from tests.accounts.conftest import bearer
from tests.factories import api_client_for

VERIFY = "/api/v2/auth/email/verify"
RESEND = "/api/v2/auth/email/verify/resend"
CHANGE = "/api/v2/user/email"
CHANGE_CONFIRM = "/api/v2/user/email/confirm"


def follow(client, path: str, link: str):
    """What the SPA's page does with the link: POST its token."""
    return client.post(path, {"token": parse_qs(urlparse(link).query)["token"][0]}, format="json")


def sign_up(client, email: str = "newcomer@example.com") -> dict:
    response = client.post("/api/v2/auth/signup", {"email": email, "password": "plum orchard velvet 42"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# --- verification ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
def test_sign_up_mails_a_verification_link_that_proves_the_address(anon_client, mailbox, worker):
    signed_up = sign_up(anon_client)
    assert signed_up["user"]["is_verified"] is False

    link = mailbox.link(mailbox.wait_for("newcomer@example.com")[0], "verify-email")
    response = follow(anon_client, VERIFY, link)

    assert response.status_code == 200, response.content
    assert response.json() == {"user": {**signed_up["user"], "is_verified": True}}
    profile = bearer(anon_client, signed_up["tokens"]["access_token"]).get("/api/v2/user/profile").json()
    assert profile["is_verified"] is True
    anon_client.credentials()
    assert follow(anon_client, VERIFY, link).json()["code"] == "invalid_token"  # once only
    # A first password is no change: no "password changed" mail came before the verification.
    assert [m["Subject"] for m in mailbox.to("newcomer@example.com")] == ["[CoinLink] Confirm your email address"]


@pytest.mark.postgres
@pytest.mark.redis
def test_a_resent_verification_link_voids_the_first(anon_client, mailbox, worker):
    signed_up = sign_up(anon_client)
    first = mailbox.link(mailbox.wait_for("newcomer@example.com")[0], "verify-email")

    resent = bearer(api_client := anon_client, signed_up["tokens"]["access_token"]).post(RESEND)
    assert resent.status_code == 202
    second = mailbox.link(mailbox.wait_for("newcomer@example.com", 2)[1], "verify-email")
    api_client.credentials()

    assert follow(anon_client, VERIFY, first).json()["code"] == "invalid_token"
    assert follow(anon_client, VERIFY, second).status_code == 200


def test_resending_the_verification_is_limited_per_user(owner_client):
    answers = [owner_client.post(RESEND).status_code for _ in range(4)]

    assert answers == [202, 202, 202, 429]


def test_resending_needs_a_sign_in(anon_client):
    assert anon_client.post(RESEND).status_code == 401


# --- notification mail needs a proven address ------------------------------------------------


@pytest.mark.postgres
def test_unverified_users_get_alerts_in_the_app_but_no_alert_mail(owner, mailbox):
    from notifications.models import Notification, NotificationSettings
    from notifications.tasks import notification_email_send
    from tests.notifications.factories import NotificationFactory

    NotificationSettings.objects.create(user=owner, email_enabled=True)
    price_alert = NotificationFactory(user=owner, type="price_alert", title="BTC crossed above 100 USD")
    security_alert = NotificationFactory(user=owner, type="security_alert", title="New sign-in to your account")

    sent = [
        notification_email_send.apply(kwargs={"notification_id": str(n.pk)}).get()
        for n in (price_alert, security_alert)
    ]

    assert sent == [False, True]
    assert [m["Subject"] for m in mailbox.messages] == ["[CoinLink] New sign-in to your account"]
    assert Notification.objects.filter(user=owner).count() == 2  # both listed in the app
    User.objects.filter(pk=owner.pk).update(is_verified=True)
    again = NotificationFactory(user=owner, type="price_alert", title="BTC crossed above 100 USD")
    assert notification_email_send.apply(kwargs={"notification_id": str(again.pk)}).get() is True


def test_the_notification_settings_say_why_mail_is_off(owner, owner_client):
    assert owner_client.get("/api/v2/notifications/settings").json()["email_paused_reason"] == "email_unverified"
    User.objects.filter(pk=owner.pk).update(is_verified=True)
    assert owner_client.get("/api/v2/notifications/settings").json()["email_paused_reason"] is None


def test_the_reason_echoed_back_in_a_put_is_accepted(owner_client):
    current = owner_client.get("/api/v2/notifications/settings").json()

    response = owner_client.put("/api/v2/notifications/settings", current, format="json")

    assert response.status_code == 200, response.content


# --- email change ------------------------------------------------------------------------------


def ask_change(client, new_email: str, password: str = "correct horse battery staple"):  # noqa: S107
    return client.post(CHANGE, {"new_email": new_email, "password": password}, format="json")


@pytest.mark.postgres
@pytest.mark.redis
def test_the_address_changes_when_the_new_one_confirms(anon_client, owner, password, mailbox, worker):
    client = api_client_for(owner)

    assert ask_change(client, "Owner.New@Example.com").status_code == 202
    notice = mailbox.wait_for(owner.email)[0]
    assert "owner.new@example.com" in mailbox.text(notice)
    owner.refresh_from_db()
    assert owner.email == "owner@example.com"  # nothing changes before the new address confirms
    link = mailbox.link(mailbox.wait_for("owner.new@example.com")[0], "confirm-email")
    response = follow(anon_client, CHANGE_CONFIRM, link)

    assert response.status_code == 200, response.content
    assert response.json()["user"]["email"] == "owner.new@example.com"
    assert response.json()["user"]["is_verified"] is True
    assert (
        anon_client.post(
            "/api/v2/auth/login", {"email": "owner.new@example.com", "password": password}, format="json"
        ).status_code
        == 200
    )
    assert follow(anon_client, CHANGE_CONFIRM, link).json()["code"] == "invalid_token"


@pytest.mark.postgres
@pytest.mark.redis
def test_a_taken_address_gets_the_same_answer_and_no_mail_that_reveals_it(owner, other_user, mailbox, worker):
    client = api_client_for(owner)

    taken = ask_change(client, other_user.email)
    free = ask_change(client, "free@example.com")

    assert taken.status_code == free.status_code == 202
    assert taken.json() == free.json()
    mailbox.wait_for("free@example.com")  # the solo worker handled the taken address first
    assert mailbox.to(other_user.email) == []
    assert len(mailbox.to(owner.email)) == 2  # the owner hears of both requests, worded alike
    texts = [
        mailbox.text(m).replace(other_user.email, "X").replace("free@example.com", "X") for m in mailbox.to(owner.email)
    ]
    assert texts[0] == texts[1]


def test_the_address_must_still_be_free_when_confirmed(anon_client, owner, other_user):
    from accounts import onetime

    token = onetime.token_issue(user=owner, purpose="email_change", email="wanted@example.com", ttl_seconds=60)
    User.objects.filter(pk=other_user.pk).update(email="wanted@example.com")  # someone got there first

    response = anon_client.post(CHANGE_CONFIRM, {"token": token}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    owner.refresh_from_db()
    assert owner.email == "owner@example.com"


def test_an_email_change_needs_the_password(owner_client):
    response = ask_change(owner_client, "new@example.com", password="not the password at all")

    assert response.status_code == 400
    assert response.json()["errors"] == {"password": ["Your password is incorrect."]}


def test_an_email_change_needs_a_sign_in(anon_client):
    assert ask_change(anon_client, "new@example.com").status_code == 401


# --- password policy and bad input -------------------------------------------------------------


@pytest.mark.parametrize("weak", [" " * 12, "aaaaaaaaaaaa", "abcabcabcabc", "qwertyuiopas"])
def test_sign_up_refuses_trivial_passwords(anon_client, db, weak):
    response = anon_client.post("/api/v2/auth/signup", {"email": "weak@example.com", "password": weak}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "too easy to guess" in " ".join(response.json()["errors"]["password"])
    assert not User.objects.filter(email="weak@example.com").exists()


BAD_VALUES = [123, None, True, ["x"], {"a": 1}, "x\u0000y", "x" * 100_000]


@pytest.mark.parametrize("value", BAD_VALUES, ids=["int", "null", "bool", "list", "object", "nul", "huge"])
@pytest.mark.parametrize(
    ("path", "body", "field", "signed_in"),
    [
        ("/api/v2/auth/password/reset", {}, "email", False),
        ("/api/v2/auth/password/reset/confirm", {"new_password": "lantern meadow quarry 7"}, "token", False),
        ("/api/v2/auth/password/reset/confirm", {"token": "A" * 43}, "new_password", False),
        (VERIFY, {}, "token", False),
        (CHANGE, {"password": "correct horse battery staple"}, "new_email", True),
        (CHANGE, {"new_email": "new@example.com"}, "password", True),
        (CHANGE_CONFIRM, {}, "token", False),
    ],
)
def test_wrong_types_nul_bytes_and_huge_strings_get_400_in_the_contract_shape(
    anon_client, owner_client, path, body, field, signed_in, value
):
    client = owner_client if signed_in else anon_client

    response = client.post(path, {**body, field: value}, format="json")

    assert response.status_code == 400, response.content
    assert set(response.json()) <= {"detail", "code", "errors", "trace_id"}
    # NUL bytes are refused by the JSON parser already (parse_error), the rest by the serializers.
    assert response.json()["code"] in ("validation_error", "parse_error")


@pytest.mark.parametrize("path", ["/api/v2/auth/password/reset", VERIFY, CHANGE_CONFIRM])
def test_unknown_fields_are_refused(anon_client, db, path):
    response = anon_client.post(path, {"email": "a@example.com", "token": "x", "admin": True}, format="json")

    assert response.status_code == 400
    assert "admin" in response.json()["errors"]


def test_one_inbox_gets_at_most_ten_links_an_hour_however_many_accounts_name_it(db, monkeypatch):
    """Sign-ups in a stranger's name (one per +tag) and their resends must not flood the stranger."""
    import django_ratelimit.core
    from django.core import mail

    from accounts.tasks import email_verify_mail

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: 1_800_000_000.0)  # one window
    strangers = [User.objects.create_user(email=f"victim+{n}@example.org") for n in range(4)]

    sent = [email_verify_mail.apply(kwargs={"user_id": str(u.pk)}).get() for u in strangers for _ in range(3)]

    assert len(mail.outbox) == 10
    assert sent == [True] * 10 + [False] * 2  # a spent budget is not an error to retry
