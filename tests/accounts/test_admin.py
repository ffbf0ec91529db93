"""The staff admin: users (search, filters, preferences inline), sessions and their revocation."""

import pytest

from accounts.models import Session, User
from tests.factories import UserFactory, tokens_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    admin = User.objects.create_superuser(email="admin@example.com", password="admin passphrase 99")
    client.force_login(admin)
    return client


def test_the_user_list_searches_by_email(staff_client, owner, other_user):
    response = staff_client.get("/admin/accounts/user/", {"q": "owner@"})

    assert response.status_code == 200
    assert b"owner@example.com" in response.content
    assert b"other@example.com" not in response.content


@pytest.mark.parametrize(("query", "shown", "hidden"), [({"is_active__exact": "0"}, b"gone@", b"owner@")])
def test_the_user_list_filters_by_status(staff_client, owner, query, shown, hidden):
    UserFactory(email="gone@example.com", is_active=False)

    content = staff_client.get("/admin/accounts/user/", query).content

    assert shown in content and hidden not in content


def test_filters_for_staff_and_verified_exist(staff_client, owner):
    for query in ({"is_staff__exact": "1"}, {"is_verified__exact": "1"}):
        assert staff_client.get("/admin/accounts/user/", query).status_code == 200


def test_the_user_page_shows_preferences_and_live_sessions(staff_client, owner):
    tokens_for(owner, user_agent="Firefox/140")

    response = staff_client.get(f"/admin/accounts/user/{owner.pk}/change/")

    assert response.status_code == 200
    assert b"Firefox/140" in response.content
    assert b"preferences" in response.content.lower()


def test_staff_can_add_a_user(staff_client):
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "added@example.com",
            "usable_password": "true",
            "password1": "plum orchard velvet 42",
            "password2": "plum orchard velvet 42",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    assert User.objects.get(email="added@example.com").check_password("plum orchard velvet 42")


def test_revoking_sessions_in_the_admin_goes_through_the_service(staff_client, owner, committed, revoked_events):
    phone, laptop = tokens_for(owner), tokens_for(owner)

    with committed():
        response = staff_client.post(
            "/admin/accounts/session/", {"action": "revoke", "_selected_action": [phone["session_id"]]}
        )

    assert response.status_code == 302
    assert Session.objects.get(pk=phone["session_id"]).revoke_reason == "admin"
    assert Session.objects.get(pk=laptop["session_id"]).revoked_at is None
    assert revoked_events[0]["session_ids"] == [phone["session_id"]]
    from tests.accounts.test_sessions import works

    assert not works(phone) and works(laptop)


def test_signing_a_user_out_everywhere_from_the_user_list(staff_client, owner, other_user, committed, revoked_events):
    mine, theirs = tokens_for(owner), tokens_for(other_user)

    with committed():
        staff_client.post("/admin/accounts/user/", {"action": "revoke_all_sessions", "_selected_action": [owner.pk]})

    from tests.accounts.test_sessions import works

    assert not works(mine) and works(theirs)
    assert [e["reason"] for e in revoked_events] == ["admin"]


def test_deactivating_a_user_in_the_admin_ends_their_sessions(staff_client, owner, committed, revoked_events):
    tokens = tokens_for(owner)
    page = staff_client.get(f"/admin/accounts/user/{owner.pk}/change/")
    form = {
        "email": owner.email,
        "first_name": owner.first_name,
        "last_name": owner.last_name,
        "is_staff": "",
        "is_verified": "",
        "preferences-TOTAL_FORMS": "0",
        "preferences-INITIAL_FORMS": "0",
        "sessions-TOTAL_FORMS": "1",
        "sessions-INITIAL_FORMS": "1",
        "sessions-0-id": tokens["session_id"],
        "sessions-0-user": str(owner.pk),
    }
    assert page.status_code == 200

    with committed():
        response = staff_client.post(f"/admin/accounts/user/{owner.pk}/change/", form)

    assert response.status_code == 302, response.content[:3000]
    owner.refresh_from_db()
    assert not owner.is_active
    assert [e["reason"] for e in revoked_events] == ["deactivated"]
    assert Session.objects.get(pk=tokens["session_id"]).revoked_at is not None


def test_sessions_cannot_be_deleted_only_revoked(staff_client, owner):
    tokens = tokens_for(owner)

    assert staff_client.get(f"/admin/accounts/session/{tokens['session_id']}/delete/").status_code == 403


def test_the_admin_is_for_staff_only(client, owner, password):
    client.force_login(owner)

    assert client.get("/admin/accounts/user/").status_code == 302


def test_a_password_set_by_staff_ends_every_session_of_the_user(staff_client, owner, committed, revoked_events):
    tokens = tokens_for(owner)
    form = {"password1": "new staff-set passphrase 7", "password2": "new staff-set passphrase 7"}

    with committed():
        response = staff_client.post(f"/admin/accounts/user/{owner.pk}/password/", form)

    assert response.status_code == 302, response.content[:3000]
    owner.refresh_from_db()
    assert owner.check_password("new staff-set passphrase 7")
    assert [e["reason"] for e in revoked_events] == ["password_changed"]
    assert Session.objects.get(pk=tokens["session_id"]).revoked_at is not None


def test_the_admin_sign_in_form_allows_ten_tries_a_minute_per_address(client, monkeypatch):
    import django_ratelimit.core

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: 1_800_000_000.0)  # one window

    def attempt(username: str, ip: str = "198.51.100.7"):
        return client.post("/admin/login/", {"username": username, "password": "guess"}, REMOTE_ADDR=ip)

    assert [attempt(f"staff{n}@example.com").status_code for n in range(10)] == [200] * 10  # the form again
    refused = attempt("staff10@example.com")

    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert attempt("staff11@example.com", ip="198.51.100.8").status_code == 200


def test_the_admin_sign_in_form_allows_ten_tries_a_minute_per_account(client, monkeypatch):
    import django_ratelimit.core

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: 1_800_000_000.0)

    statuses = [
        client.post(
            "/admin/login/", {"username": "Admin@Example.com", "password": "guess"}, REMOTE_ADDR=f"198.51.100.{n}"
        ).status_code
        for n in range(11)
    ]

    assert statuses == [200] * 10 + [429]


# The admin form signs in with NFKC of the stripped username (then an exact match), so each of these
# is the account admin@example.com: none may start a counter of its own.
ADMIN_LOOK_ALIKES = [
    "\uff41\uff44\uff4d\uff49\uff4e@example.com",  # full-width
    "\U0001d68a\U0001d68d\U0001d696\U0001d692\U0001d697@example.com",  # mathematical monospace
    "admin\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # full-width @ and domain
    " \u3000admin@example.com\u00a0",  # ideographic and no-break spaces around it
    "ADMIN@EXAMPLE.COM",
]


@pytest.mark.parametrize("spelling", ADMIN_LOOK_ALIKES)
def test_a_look_alike_username_meets_the_accounts_locked_sign_in_limit(client, monkeypatch, spelling):
    import django_ratelimit.core

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: 1_800_000_000.0)
    User.objects.create_superuser(email="admin@example.com", password="admin passphrase 99")
    for n in range(10):
        client.post(
            "/admin/login/", {"username": "admin@example.com", "password": "guess"}, REMOTE_ADDR=f"198.51.100.{n}"
        )

    answer = client.post(
        "/admin/login/", {"username": spelling, "password": "admin passphrase 99"}, REMOTE_ADDR="192.0.2.77"
    )

    assert answer.status_code == 429 and answer.json()["code"] == "rate_limited"
    assert "_auth_user_id" not in client.session


def test_the_look_alikes_are_what_the_admin_form_signs_in_with(client):
    """The premise of the test above: without the limit, each spelling signs in as admin@example.com."""
    User.objects.create_superuser(email="admin@example.com", password="admin passphrase 99")

    signed_in = []
    for spelling in ADMIN_LOOK_ALIKES[:4]:
        client.logout()
        client.post("/admin/login/", {"username": spelling, "password": "admin passphrase 99"}, REMOTE_ADDR="192.0.2.9")
        signed_in.append("_auth_user_id" in client.session)

    assert signed_in == [True] * 4


@pytest.mark.postgres
@pytest.mark.redis
def test_staff_can_mail_a_new_verification_link_to_unverified_users(staff_client, owner, other_user, mailbox, worker):
    User.objects.filter(pk=other_user.pk).update(is_verified=True)

    response = staff_client.post(
        "/admin/accounts/user/",
        {"action": "resend_verification", "_selected_action": [str(owner.pk), str(other_user.pk)]},
        follow=True,
    )

    assert b"Verification mail queued for 1 user(s)." in response.content
    link = mailbox.link(mailbox.wait_for(owner.email)[0], "verify-email")
    verified = staff_client.post("/api/v2/auth/email/verify", {"token": link.rsplit("=", 1)[1]}, "application/json")
    assert verified.status_code == 200
    assert mailbox.to(other_user.email) == []
