import pytest

from accounts.models import KnownDevice, Preferences, Session, User

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v2/auth/signup"
STRONG = "plum orchard velvet 42"


def signup(client, **body):
    body.setdefault("email", "new@example.com")
    body.setdefault("password", STRONG)
    return client.post(SIGNUP, body, format="json")


def test_it_creates_the_user_and_signs_them_in(anon_client):
    response = signup(anon_client, first_name="Grace", last_name="Hopper")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user", "tokens"}
    assert set(body["user"]) == {"id", "email", "first_name", "last_name", "is_verified", "created_at"}
    assert body["user"]["email"] == "new@example.com"
    assert body["user"]["first_name"] == "Grace"
    assert body["user"]["is_verified"] is False
    tokens = body["tokens"]
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 15 * 60
    assert tokens["access_token"] and tokens["refresh_token"]


def test_it_starts_a_session_and_creates_preferences(anon_client):
    signup(anon_client)

    user = User.objects.get(email="new@example.com")
    assert Session.objects.filter(user=user, revoked_at=None).count() == 1
    assert Preferences.objects.filter(user=user).exists()
    assert KnownDevice.objects.get(user=user).sign_ins == 1
    assert user.last_login is not None


def test_the_new_access_token_works_at_once(anon_client, client):
    tokens = signup(anon_client).json()["tokens"]

    response = client.get("/api/v2/auth/verify", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")

    assert response.status_code == 200
    assert response.json()["user"]["email"] == "new@example.com"
    assert response.json()["message"]


def test_it_stores_the_password_with_bcrypt_sha256(anon_client):
    signup(anon_client)

    assert User.objects.get().password.startswith("bcrypt_sha256$$2b$04$")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("New@Example.COM", "new@example.com"),
        ("  new@example.com ", "new@example.com"),
        ("\uff4e\uff45\uff57@example.com", "new@example.com"),  # full-width letters fold under NFKC
        ("new@b\u00fccher.de", "new@xn--bcher-kva.de"),
    ],
)
def test_it_normalizes_the_email(anon_client, typed, stored):
    response = signup(anon_client, email=typed)

    assert response.status_code == 201
    assert response.json()["user"]["email"] == stored


def test_a_taken_email_is_an_ordinary_validation_error(anon_client, owner):
    response = signup(anon_client, email="OWNER@example.com")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body["errors"]) == {"email"}
    assert User.objects.count() == 1


def test_a_full_width_spelling_of_a_taken_email_is_taken(anon_client, owner):
    response = signup(anon_client, email="\uff4f\uff57\uff4e\uff45\uff52@example.com")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"email"}


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short pw", "too short"),
        ("123456789012345", "numeric"),
        ("password1234", "common"),
        ("new@example.com1", "like the email"),
    ],
)
def test_it_refuses_weak_passwords_with_field_errors(anon_client, password, why):
    response = signup(anon_client, password=password)

    assert response.status_code == 400, why
    assert set(response.json()["errors"]) == {"password"}
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": STRONG}, "email"),
        ({"email": "new@example.com"}, "password"),
        ({"email": "new@example.com", "password": STRONG, "is_staff": True}, "is_staff"),
        ({"email": 12345, "password": STRONG}, "email"),
        ({"email": "new@example.com", "password": 123456789012345}, "password"),
        ({"email": ["new@example.com"], "password": STRONG}, "email"),
        ({"email": "new@example.com", "password": STRONG, "first_name": {"a": 1}}, "first_name"),
        ({"email": "new@example.com", "password": STRONG, "first_name": "Gr\u0007ce"}, "first_name"),
        ({"email": "x" * 10_000 + "@example.com", "password": STRONG}, "email"),
        ({"email": "new@example.com", "password": "p" * 100_000}, "password"),
        ({"email": "not-an-email", "password": STRONG}, "email"),
        ({"email": "\u043ewner@example.com", "password": STRONG}, "email"),  # Cyrillic o in the local part
        ({"email": "new\u200b@example.com", "password": STRONG}, "email"),  # zero-width space
        ({"email": "new@example.com", "password": STRONG, "first_name": "x" * 151}, "first_name"),
    ],
)
def test_bad_input_is_a_400_with_field_errors_and_creates_nothing(anon_client, body, field):
    response = anon_client.post(SIGNUP, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert response.json()["trace_id"]
    assert not User.objects.exists()


def test_a_nul_byte_is_a_400(anon_client):
    response = anon_client.post(
        SIGNUP, '{"email": "new\\u0000@example.com", "password": "x"}', content_type="application/json"
    )

    assert response.status_code == 400
    assert not User.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(anon_client):
    response = anon_client.post(SIGNUP, "[1, 2]", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("raw", ["null", "1", '"owner@example.com"', "{", "{}"])
def test_bodies_that_are_not_a_signup_object_are_400s(anon_client, raw):
    response = anon_client.post(SIGNUP, raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] in ("validation_error", "parse_error")


def test_a_huge_user_agent_is_stored_truncated(anon_client):
    response = anon_client.post(
        SIGNUP, {"email": "new@example.com", "password": STRONG}, format="json", HTTP_USER_AGENT="A\x01" * 5000
    )

    assert response.status_code == 201
    assert Session.objects.get().user_agent == "A" * 512


def test_a_1_mib_password_is_refused_before_any_work(anon_client):
    response = signup(anon_client, password="p" * (1024 * 1024 + 10))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_a_failure_after_the_user_row_leaves_no_half_created_user(anon_client, monkeypatch):
    from accounts import services

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services.Preferences.objects, "create", broken)

    with pytest.raises(RuntimeError):
        signup(anon_client)

    assert not User.objects.exists()
    assert not Session.objects.exists()
