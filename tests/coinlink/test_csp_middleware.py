"""coinlink.csp_middleware: django-csp's header, built once, and django-csp's own path where it differs."""

from __future__ import annotations

import pytest
from csp.constants import NONCE, SELF
from csp.decorators import csp_update
from csp.exceptions import CSPNonceError
from csp.utils import build_policy
from django.http import HttpResponse
from django.test import RequestFactory

from coinlink.csp_middleware import CSPMiddleware


def _directives(header: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (part.split() for part in header.split(";") if part.strip())}


def _through_middleware(view, path="/api/v2/auth/verify"):
    request = RequestFactory().get(path)
    middleware = CSPMiddleware(view)
    return request, middleware(request)


@pytest.mark.django_db
def test_an_api_answer_carries_the_policy_django_csp_builds(anon_client):
    response = anon_client.get("/api/v2/market/ticker")

    assert _directives(response["Content-Security-Policy"]) == _directives(build_policy())


def test_a_changed_policy_applies_to_the_next_response(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'self'"]}}

    _, response = _through_middleware(lambda request: HttpResponse("ok"))

    assert response["Content-Security-Policy"] == "default-src 'self'"


def test_a_view_that_updates_the_policy_still_gets_its_update():
    view = csp_update({"img-src": ["https://images.example"]})(lambda request: HttpResponse("ok"))

    _, response = _through_middleware(view)

    assert "https://images.example" in _directives(response["Content-Security-Policy"])["img-src"]


def test_a_nonce_used_by_the_response_is_in_its_header(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"script-src": [SELF, NONCE]}}

    def view(request):
        return HttpResponse(str(request.csp_nonce))

    _, response = _through_middleware(view)

    assert f"'nonce-{response.content.decode()}'" in response["Content-Security-Policy"]


def test_a_nonce_asked_for_after_a_plain_response_is_an_error():
    request, _ = _through_middleware(lambda request: HttpResponse("ok"))

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)
