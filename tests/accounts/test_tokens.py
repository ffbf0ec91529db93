"""Login, refresh rotation, reuse detection, and which tokens are refused."""

import base64
import json
import time

import jwt
import pytest
from django.conf import settings

from accounts.models import Session, User
from accounts.selectors import session_is_active
from tests.accounts.conftest import bearer
from tests.factories import tokens_for

pytestmark = pytest.mark.django_db

LOGIN = "/api/v2/auth/login"
REFRESH = "/api/v2/auth/refresh"
VERIFY = "/api/v2/auth/verify"


def login(client, email="owner@example.com", password="correct horse battery staple", **extra):  # noqa: S107
    return client.post(LOGIN, {"email": email, "password": password}, format="json", **extra)


def refresh(client, token):
    return client.post(REFRESH, {"refresh_token": token}, format="json")


def verify(client, access_token):
    return bearer(client, access_token).get(VERIFY)


# --- login ---------------------------------------------------------------------------------------


def test_it_signs_in_with_email_and_password(anon_client, owner):
    response = login(anon_client)

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == str(owner.id)
    assert body["tokens"]["token_type"] == "bearer"
    assert body["tokens"]["expires_in"] == 900
    assert response["Cache-Control"] == "no-store"
    assert verify(anon_client, body["tokens"]["access_token"]).status_code == 200


def test_every_login_starts_its_own_session(anon_client, owner):
    login(anon_client, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.7")
    login(anon_client)

    sessions = Session.objects.filter(user=owner)
    assert sessions.count() == 2
    firefox = sessions.get(user_agent="Firefox/140")
    assert firefox.ip_address == "203.0.113.7"
    assert len(firefox.device_fingerprint) == 64
    assert firefox.revoked_at is None
    assert firefox.expires_at > firefox.created_at


def test_the_email_is_matched_case_insensitively(anon_client, owner):
    assert login(anon_client, email=" OWNER@Example.com").status_code == 200


def test_unknown_email_and_wrong_password_are_the_same_401(anon_client, owner):
    unknown = login(anon_client, email="nobody@example.com")
    wrong = login(anon_client, password="not the password at all")

    assert unknown.status_code == wrong.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "trace_id"}  # noqa: E731
    assert (
        strip(unknown.json())
        == strip(wrong.json())
        == {
            "detail": "Invalid email or password.",
            "code": "invalid_credentials",
        }
    )


def test_an_unknown_email_still_costs_a_password_hash(anon_client, owner, monkeypatch):
    """Timing must not tell a missing account from a wrong password: both run bcrypt once."""
    from django.contrib.auth.hashers import BCryptSHA256PasswordHasher

    calls = []
    original = BCryptSHA256PasswordHasher.encode
    monkeypatch.setattr(
        BCryptSHA256PasswordHasher, "encode", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )

    login(anon_client, email="nobody@example.com")
    unknown_hashes = len(calls)
    calls.clear()
    login(anon_client, password="not the password at all")

    assert unknown_hashes == 1
    assert len(calls) == 1


def test_a_user_without_a_usable_password_looks_like_any_failure(anon_client, owner, monkeypatch):
    from django.contrib.auth.hashers import BCryptSHA256PasswordHasher

    owner.set_unusable_password()
    owner.save()
    calls = []
    original = BCryptSHA256PasswordHasher.encode
    monkeypatch.setattr(
        BCryptSHA256PasswordHasher, "encode", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )

    response = login(anon_client)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert len(calls) == 1


def test_an_inactive_user_cannot_sign_in(anon_client, owner):
    User.objects.filter(pk=owner.pk).update(is_active=False)

    assert login(anon_client).status_code == 401


def test_a_hash_with_fewer_rounds_is_upgraded_at_login(anon_client, owner, settings):
    assert "$2b$04$" in owner.password
    settings.BCRYPT_ROUNDS = 5

    assert login(anon_client).status_code == 200

    owner.refresh_from_db()
    assert "$2b$05$" in owner.password
    assert owner.check_password("correct horse battery staple")


def test_a_hash_with_more_rounds_is_never_weakened(anon_client, owner, settings):
    settings.BCRYPT_ROUNDS = 5
    owner.set_password("correct horse battery staple")
    owner.save()
    settings.BCRYPT_ROUNDS = 4

    assert login(anon_client).status_code == 200

    owner.refresh_from_db()
    assert "$2b$05$" in owner.password


def test_a_login_records_last_login(anon_client, owner):
    login(anon_client)

    owner.refresh_from_db()
    assert owner.last_login is not None


@pytest.mark.parametrize(
    "body",
    [
        {"email": "owner@example.com"},
        {"password": "x"},
        {"email": "owner@example.com", "password": "x", "remember": True},
        {"email": True, "password": "x"},
        {"email": "owner@example.com", "password": None},
        {"email": "owner@example.com", "password": "p" * 100_000},
    ],
)
def test_bad_login_input_is_a_400(anon_client, owner, body):
    response = anon_client.post(LOGIN, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]


# --- new devices -------------------------------------------------------------------------------


def test_a_sign_in_from_a_new_device_is_announced(anon_client, owner, committed, sign_in_events):
    with committed():
        login(anon_client, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.7")
    with committed():
        login(anon_client, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.99")  # same /24
    with committed():
        login(anon_client, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="198.51.100.4")

    assert [e["new_device"] for e in sign_in_events] == [False, False, True]
    last = sign_in_events[-1]
    assert last["user"] == owner
    assert last["ip_address"] == "198.51.100.4"
    assert last["user_agent"] == "Firefox/140"
    assert str(last["session"].user_id) == str(owner.id)


def test_the_sign_in_is_announced_only_after_the_commit(anon_client, owner, sign_in_events):
    login(anon_client)  # the test's transaction never commits

    assert sign_in_events == []


def test_a_new_browser_on_a_known_network_is_a_new_device(anon_client, owner, committed, sign_in_events):
    with committed():
        login(anon_client, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.7")
    with committed():
        login(anon_client, HTTP_USER_AGENT="Chrome/141", REMOTE_ADDR="203.0.113.7")

    assert [e["new_device"] for e in sign_in_events] == [False, True]


def test_the_client_ip_comes_from_trusted_proxies_only(anon_client, owner, settings):
    import ipaddress

    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)
    login(anon_client, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.4")
    login(anon_client, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.5")

    assert set(Session.objects.values_list("ip_address", flat=True)) == {"198.51.100.4", "203.0.113.7"}


# --- refresh -----------------------------------------------------------------------------------


def test_refresh_returns_a_new_pair_and_the_old_refresh_token_dies(anon_client, owner):
    first = tokens_for(owner)

    response = refresh(anon_client, first["refresh_token"])

    assert response.status_code == 200
    tokens = response.json()["tokens"]
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert response["Cache-Control"] == "no-store"
    assert tokens["refresh_token"] != first["refresh_token"]
    assert verify(anon_client, tokens["access_token"]).status_code == 200
    assert refresh(anon_client, tokens["refresh_token"]).status_code == 200


def test_refresh_keeps_the_session_and_moves_it_to_the_new_token(anon_client, owner):
    first = tokens_for(owner)
    rotated = refresh(anon_client, first["refresh_token"]).json()["tokens"]

    session = Session.objects.get(pk=first["session_id"])
    assert session.revoked_at is None
    assert session.refresh_jti == jwt.decode(rotated["refresh_token"], options={"verify_signature": False})["jti"]


def test_the_database_never_holds_a_usable_refresh_token(anon_client, owner):
    from django.forms.models import model_to_dict

    issued = tokens_for(owner)["refresh_token"]
    rotated = refresh(anon_client, issued).json()["tokens"]["refresh_token"]

    stored = [str(value) for value in model_to_dict(Session.objects.get(user=owner)).values()]
    assert not any(token in value for token in (issued, rotated) for value in stored)


def test_sessions_write_nothing_to_simplejwts_blacklist_tables(anon_client, owner):
    """The session row is the authority; the tables stay only until a later release drops them."""
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    rotated = refresh(anon_client, tokens_for(owner)["refresh_token"]).json()["tokens"]
    client = bearer(anon_client, rotated["access_token"])
    response = client.post("/api/v2/auth/logout", {"refresh_token": rotated["refresh_token"]}, format="json")

    assert response.status_code == 204
    assert Session.objects.get(user=owner).revoked_at is not None
    assert not OutstandingToken.objects.exists()
    assert not BlacklistedToken.objects.exists()


def test_a_rotation_is_one_write_and_no_read(owner, django_assert_num_queries):
    from accounts import services

    tokens = tokens_for(owner)

    # The claim UPDATE, with the user check inside: one statement, atomic on its own.
    with django_assert_num_queries(1) as captured:
        services.session_refresh(refresh_token=tokens["refresh_token"])

    statements = [q["sql"].split()[0] for q in captured.captured_queries]
    assert statements == ["UPDATE"]


def test_presenting_a_rotated_refresh_token_is_theft(anon_client, owner, committed, revoked_events):
    stolen = tokens_for(owner)
    elsewhere = tokens_for(owner, user_agent="Other/1")
    rotated = refresh(anon_client, stolen["refresh_token"]).json()["tokens"]

    with committed():
        response = refresh(anon_client, stolen["refresh_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "token_reused"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not Session.objects.filter(user=owner, revoked_at=None).exists()
    assert set(Session.objects.values_list("revoke_reason", flat=True)) == {"refresh_token_reuse"}
    assert refresh(anon_client, rotated["refresh_token"]).status_code == 401
    assert verify(anon_client, rotated["access_token"]).status_code == 401
    assert verify(anon_client, elsewhere["access_token"]).status_code == 401
    assert revoked_events == [
        {
            "signal": revoked_events[0]["signal"],
            "user_id": str(owner.id),
            "session_ids": revoked_events[0]["session_ids"],
            "reason": "refresh_token_reuse",
        }
    ]
    assert set(revoked_events[0]["session_ids"]) == {stolen["session_id"], elsewhere["session_id"]}


def test_the_refresh_token_of_a_logged_out_session_is_refused_without_punishing_others(anon_client, owner, committed):
    ended = tokens_for(owner)
    other = tokens_for(owner)
    with committed():
        bearer(anon_client, ended["access_token"]).post(
            "/api/v2/auth/logout", {"refresh_token": ended["refresh_token"]}, format="json"
        )
    anon_client.credentials()

    response = refresh(anon_client, ended["refresh_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"
    assert session_is_active(session_id=other["session_id"])


def test_an_access_token_is_not_a_refresh_token(anon_client, owner):
    response = refresh(anon_client, tokens_for(owner)["access_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_refresh_needs_no_bearer_and_ignores_an_expired_one(anon_client, owner):
    tokens = tokens_for(owner)
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer expired.garbage.token")

    assert refresh(anon_client, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize("body", [{}, {"refresh_token": 5}, {"refresh_token": "x", "extra": 1}, {"token": "x"}])
def test_bad_refresh_input_is_a_400(anon_client, body):
    assert anon_client.post(REFRESH, body, format="json").status_code == 400


def test_refresh_of_an_inactive_user_is_refused(anon_client, owner):
    tokens = tokens_for(owner)
    User.objects.filter(pk=owner.pk).update(is_active=False)

    assert refresh(anon_client, tokens["refresh_token"]).status_code == 401


# --- tokens that must be refused ---------------------------------------------------------------


def _parts(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload)


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _sign(payload: dict, key: str | None = None) -> str:
    return jwt.encode(payload, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def test_a_valid_token_is_accepted_as_the_baseline(anon_client, owner):
    _, payload = _parts(tokens_for(owner)["access_token"])

    assert verify(anon_client, _sign(payload)).status_code == 200
    assert payload["iss"] == "coinlink" and payload["aud"] == "coinlink-api"
    assert payload["token_type"] == "access" and "sid" in payload and "jti" in payload


def test_alg_none_is_refused(anon_client, owner):
    _, payload = _parts(tokens_for(owner)["access_token"])
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."

    assert verify(anon_client, unsigned).status_code == 401


def test_a_token_signed_with_another_key_is_refused(anon_client, owner):
    _, payload = _parts(tokens_for(owner)["access_token"])

    assert verify(anon_client, _sign(payload, key="k" * 48)).status_code == 401


def test_a_changed_payload_is_refused(anon_client, owner, other_user):
    token = tokens_for(owner)["access_token"]
    header, _, signature = token.split(".")
    _, claims = _parts(token)
    claims["user_id"] = str(other_user.id)

    assert verify(anon_client, f"{header}.{_b64(claims)}.{signature}").status_code == 401


def test_an_expired_token_is_refused_after_the_leeway(anon_client, owner):
    _, payload = _parts(tokens_for(owner)["access_token"])

    payload["exp"] = int(time.time()) - 30
    assert verify(anon_client, _sign(payload)).status_code == 200  # within the 60 s leeway
    payload["exp"] = int(time.time()) - 61 - 5
    response = verify(anon_client, _sign(payload))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_refresh_token_is_not_an_access_token(anon_client, owner):
    assert verify(anon_client, tokens_for(owner)["refresh_token"]).status_code == 401


@pytest.mark.parametrize(("claim", "value"), [("iss", "someone-else"), ("aud", "another-api")])
def test_a_token_for_another_issuer_or_audience_is_refused(anon_client, owner, claim, value):
    _, payload = _parts(tokens_for(owner)["access_token"])
    payload[claim] = value

    assert verify(anon_client, _sign(payload)).status_code == 401


def test_a_token_without_a_session_is_refused(anon_client, owner):
    from rest_framework_simplejwt.tokens import AccessToken

    assert verify(anon_client, str(AccessToken.for_user(owner))).status_code == 401


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer \u00e9\u00e9", "Bearer " + "a" * 5000])
def test_malformed_authorization_headers_are_401_not_500(anon_client, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)

    assert anon_client.get(VERIFY).status_code == 401


def test_verify_without_a_token_is_401(anon_client):
    response = anon_client.get(VERIFY)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_new_device_sign_in_ends_up_as_a_security_alert(anon_client, owner, committed):
    """End to end through coinlink.wiring: the contract's "new sign-ins from a new device create a security_alert"."""
    from notifications.models import Notification

    with committed():
        login(anon_client, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.7")
    with committed():
        login(anon_client, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.8")
    assert not Notification.objects.filter(user=owner).exists()

    with committed():
        login(anon_client, HTTP_USER_AGENT="Unknown/1", REMOTE_ADDR="192.0.2.50")

    alert = Notification.objects.get(user=owner)
    assert alert.type == "security_alert"


def _with_claims(access_token: str, **claims) -> str:
    """The same token re-signed by simplejwt with some claims changed: only a holder of the key can do this."""
    from accounts.tokens import SessionAccessToken

    token = SessionAccessToken(access_token)
    for name, value in claims.items():
        token[name] = value
    return str(token)


@pytest.mark.parametrize("cache_warm", [True, False])
def test_a_token_naming_another_users_session_is_invalid(anon_client, owner, other_user, cache_warm):
    from django.core.cache import cache

    theirs = tokens_for(other_user)
    forged = _with_claims(tokens_for(owner)["access_token"], sid=theirs["session_id"])
    if not cache_warm:
        cache.clear()

    response = verify(anon_client, forged)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token" and response.json()["trace_id"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert verify(anon_client, theirs["access_token"]).status_code == 200  # their own token is untouched


@pytest.mark.parametrize(
    "spell", [str.upper, lambda sid: sid.replace("-", ""), lambda sid: "{" + sid + "}", lambda sid: "urn:uuid:" + sid]
)
def test_another_spelling_of_the_session_id_ends_with_the_session(anon_client, owner, committed, spell):
    from accounts import services

    issued = tokens_for(owner)
    respelled = _with_claims(issued["access_token"], sid=spell(issued["session_id"]))
    assert verify(anon_client, respelled).status_code == 200  # the same session, so it counts as that one

    with committed():
        services.sessions_revoke(user_id=owner.pk, reason="logout_all")

    response = verify(anon_client, respelled)
    assert response.status_code == 401 and response.json()["code"] == "session_revoked"


def test_another_spelling_of_the_user_id_is_the_same_user(anon_client, owner):
    respelled = _with_claims(tokens_for(owner)["access_token"], user_id=str(owner.pk).upper())

    response = verify(anon_client, respelled)

    assert response.status_code == 200 and response.json()["user"]["id"] == str(owner.pk)
