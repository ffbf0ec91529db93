"""coinlink.negotiation: DRF's renderer choice, remembered per Accept header, is always DRF's own."""

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory

from coinlink.negotiation import RememberedContentNegotiation
from tests.helpers import assert_error_shape

ACCEPTS = [
    None,  # no header: */*
    "*/*",
    "application/json",
    "application/json, text/plain, */*",  # the SPA's HTTP client
    "application/json; indent=4",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # a browser
    "application/*",
]


def request_with(accept: str | None, query: str = "") -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get(f"/api/v2/anything{query}", **headers))


def choice(negotiation, renderers, accept, query=""):
    renderer, media_type = negotiation.select_renderer(request_with(accept, query), renderers)
    return type(renderer), media_type


@pytest.fixture(autouse=True)
def _forget():
    RememberedContentNegotiation._chosen.clear()


def test_it_is_the_projects_negotiation():
    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is RememberedContentNegotiation


@pytest.mark.parametrize("renderer_classes", [[JSONRenderer], [JSONRenderer, BrowsableAPIRenderer]])
@pytest.mark.parametrize("accept", ACCEPTS)
def test_it_chooses_what_drf_chooses_the_first_time_and_every_time_after(accept, renderer_classes):
    drf = choice(DefaultContentNegotiation(), [r() for r in renderer_classes], accept)

    first = choice(RememberedContentNegotiation(), [r() for r in renderer_classes], accept)
    remembered = choice(RememberedContentNegotiation(), [r() for r in renderer_classes], accept)

    assert first == remembered == drf


def test_the_renderer_it_returns_is_one_of_this_requests_renderers():
    RememberedContentNegotiation().select_renderer(request_with("*/*"), [JSONRenderer()])
    renderers = [JSONRenderer()]

    renderer, _ = RememberedContentNegotiation().select_renderer(request_with("*/*"), renderers)

    assert renderer is renderers[0]


def test_an_unacceptable_accept_header_is_refused_every_time_and_never_remembered():
    for _ in range(2):
        with pytest.raises(NotAcceptable):
            RememberedContentNegotiation().select_renderer(request_with("text/html"), [JSONRenderer()])
    assert RememberedContentNegotiation._chosen == {}


def test_a_format_query_parameter_takes_drfs_own_path():
    RememberedContentNegotiation().select_renderer(request_with("*/*"), [JSONRenderer()])

    with pytest.raises(Http404):  # DRF: no renderer of that format
        RememberedContentNegotiation().select_renderer(request_with("*/*", "?format=xml"), [JSONRenderer()])


def test_the_table_stays_bounded_whatever_clients_send():
    for n in range(1000):
        RememberedContentNegotiation().select_renderer(request_with(f"application/json; v={n}"), [JSONRenderer()])

    assert len(RememberedContentNegotiation._chosen) <= 256


@pytest.mark.django_db
def test_an_api_call_that_accepts_no_json_is_a_406_in_the_contracts_shape(owner_client):
    for _ in range(2):
        response = owner_client.get("/api/v2/notifications/unread-count", HTTP_ACCEPT="text/html")
        assert_error_shape(response, 406)


@pytest.mark.django_db
def test_an_api_call_is_rendered_as_the_accept_header_asked(owner_client):
    for _ in range(2):
        response = owner_client.get("/api/v2/notifications/unread-count", HTTP_ACCEPT="application/json; indent=4")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert response.content == b'{\n    "count": 0\n}'  # the media type's parameter reached the renderer
