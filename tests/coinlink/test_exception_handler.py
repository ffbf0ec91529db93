import pytest
from django.core.exceptions import PermissionDenied
from django.db import OperationalError
from django.http import Http404
from django_ratelimit.exceptions import Ratelimited
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework import exceptions as drf

from coinlink.errors import NotFound, RateLimited, exception_handler


def handle(exc):
    response = exception_handler(exc, {})
    assert response is not None
    return response


def test_a_validation_error_lists_field_errors_and_names_the_first_in_detail():
    response = handle(drf.ValidationError({"email": ["Enter a valid email address."], "password": ["Too short."]}))
    assert response.status_code == 400
    assert response.data["code"] == "validation_error"
    assert response.data["errors"]["email"] == ["Enter a valid email address."]
    assert response.data["detail"] == "email: Enter a valid email address."


def test_a_non_field_validation_error_goes_under_non_field_errors():
    response = handle(drf.ValidationError(["Bad combination."]))
    assert response.data["errors"] == {"non_field_errors": ["Bad combination."]}
    assert response.data["detail"] == "Bad combination."


def test_nested_validation_errors_are_flattened_to_messages():
    response = handle(drf.ValidationError({"watchlist": {"0": ["Unknown symbol."]}}))
    assert response.data["errors"]["watchlist"] == ["0: Unknown symbol."]


def test_unauthenticated_is_401_with_a_bearer_challenge():
    response = handle(drf.NotAuthenticated())
    assert response.status_code == 401
    assert response.data["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (drf.MethodNotAllowed("DELETE"), 405, "method_not_allowed"),
        (drf.UnsupportedMediaType("text/plain"), 415, "unsupported_media_type"),
        (drf.ParseError("Malformed JSON"), 400, "parse_error"),
        (Http404(), 404, "not_found"),
        (NotFound("No such alert."), 404, "not_found"),
        (PermissionDenied(), 403, "permission_denied"),
        (OperationalError("server closed the connection"), 503, "database_unavailable"),
        (RedisConnectionError("Connection refused"), 503, "cache_unavailable"),
    ],
)
def test_each_failure_maps_to_its_status_and_code(exc, status, code):
    response = handle(exc)
    assert response.status_code == status
    assert response.data["code"] == code
    assert response.data["detail"]


@pytest.mark.parametrize("exc", [RateLimited(retry_after=17), Ratelimited(), drf.Throttled(wait=17)])
def test_rate_limits_are_429_with_retry_after(exc):
    response = handle(exc)
    assert response.status_code == 429
    assert response.data["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1


def test_an_unknown_exception_is_left_to_the_500_handler():
    assert exception_handler(ZeroDivisionError(), {}) is None
