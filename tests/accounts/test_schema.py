"""The OpenAPI schema documents every accounts endpoint with its request, response and errors."""

import pytest

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "/api/v2/auth/signup": {"post": ("201", "400", "429")},
    "/api/v2/auth/login": {"post": ("200", "400", "401", "429")},
    "/api/v2/auth/refresh": {"post": ("200", "400", "401", "429")},
    "/api/v2/auth/logout": {"post": ("204", "400", "401")},
    "/api/v2/auth/logout-all": {"post": ("204", "401")},
    "/api/v2/auth/verify": {"get": ("200", "401")},
    "/api/v2/auth/password": {"post": ("204", "400", "401", "429")},
    "/api/v2/auth/password/reset": {"post": ("202", "400", "429", "503")},
    "/api/v2/auth/password/reset/confirm": {"post": ("204", "400", "429", "503")},
    "/api/v2/auth/email/verify": {"post": ("200", "400", "429", "503")},
    "/api/v2/auth/email/verify/resend": {"post": ("202", "401", "429", "503")},
    "/api/v2/user/email": {"post": ("202", "400", "401", "429", "503")},
    "/api/v2/user/email/confirm": {"post": ("200", "400", "429", "503")},
    "/api/v2/user/profile": {"get": ("200", "401"), "patch": ("200", "400", "401")},
    "/api/v2/user/preferences": {"get": ("200", "401"), "put": ("200", "400"), "patch": ("200", "400")},
    "/api/v2/user/stats": {"get": ("200", "401")},
    "/api/v2/user/sessions": {"get": ("200", "401")},
    "/api/v2/user/sessions/{session_id}": {"delete": ("204", "401", "404")},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_documents_its_success_and_error_responses(schema, path):
    for method, codes in ENDPOINTS[path].items():
        operation = schema["paths"][path][method]
        for code in codes:
            assert code in operation["responses"], (path, method, code)
        if method in ("post", "put", "patch") and path not in (
            "/api/v2/auth/logout-all",
            "/api/v2/auth/email/verify/resend",
        ):
            assert "requestBody" in operation, (path, method)


def test_bearer_endpoints_declare_the_scheme_and_public_ones_do_not(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {"bearerAuth": []} in schema["paths"]["/api/v2/user/profile"]["get"]["security"]
    assert "bearerAuth" not in str(schema["paths"]["/api/v2/auth/login"]["post"].get("security", []))


def test_the_mailed_token_endpoints_need_no_sign_in_and_resend_and_email_change_do(schema):
    for path in ("/api/v2/auth/password/reset", "/api/v2/auth/email/verify", "/api/v2/user/email/confirm"):
        assert "bearerAuth" not in str(schema["paths"][path]["post"].get("security", [])), path
    for path in ("/api/v2/auth/email/verify/resend", "/api/v2/user/email"):
        assert {"bearerAuth": []} in schema["paths"][path]["post"]["security"], path


def test_the_notification_settings_document_why_mail_is_paused(schema):
    field = schema["components"]["schemas"]["NotificationSettings"]["properties"]["email_paused_reason"]

    assert field["readOnly"] is True and field["nullable"] is True


def test_the_token_shape_is_the_contracts(schema):
    tokens = schema["components"]["schemas"]["Tokens"]

    assert set(tokens["properties"]) == {"access_token", "refresh_token", "token_type", "expires_in"}


def test_the_schema_is_served_with_the_auth_paths(client):
    response = client.get("/api/schema", {"format": "json"})

    assert response.status_code == 200
    assert "/api/v2/auth/login" in response.json()["paths"]
