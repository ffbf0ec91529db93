"""OPTIONS on any API path answers without a 500, authenticated or not."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/alerts/e3e70682-c209-1cac-a29f-6fbed82c07cd",
        "/api/v2/notifications/settings",
        "/api/v2/user/profile",
    ],
)
def test_options_answers_without_introspecting_objects(owner_client, path):
    response = owner_client.options(path)
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert "actions" not in body and "renders" in body
