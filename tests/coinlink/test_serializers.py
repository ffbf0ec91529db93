"""coinlink.serializers.ModelSerializer: the fields DRF derives from the model are built once per
class, and every serializer of ours still gets exactly the fields DRF itself would build."""

from __future__ import annotations

import pytest
from rest_framework import serializers

import accounts.api.serializers  # noqa: F401  (defines subclasses)
import notifications.api.serializers  # noqa: F401
from accounts.api.serializers import UserSerializer
from accounts.models import User
from coinlink.serializers import ModelSerializer


def _subclasses(cls) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _described(fields) -> dict[str, str]:
    # A DRF field's repr is its class and every constructor argument (validators included).
    return {name: repr(field) for name, field in fields.items()}


OURS = sorted({cls for cls in _subclasses(ModelSerializer) if cls.__module__.split(".")[0] != "tests"}, key=repr)


def test_every_model_serializer_of_the_api_uses_the_cached_base():
    # Guards the list below: a new serializer that bypassed the cached base would not be checked.
    project = [
        cls
        for cls in _subclasses(serializers.ModelSerializer)
        if cls.__module__.split(".")[0] in {"accounts", "markets", "notifications", "realtime"}
    ]
    assert project and set(project) <= set(OURS)


@pytest.mark.parametrize("serializer_class", OURS, ids=lambda cls: cls.__name__)
def test_the_cached_fields_are_the_ones_drf_builds_whatever_the_instance_and_context(serializer_class):
    cached = _described(serializer_class().fields)

    with_instance = serializer_class(
        instance=serializer_class.Meta.model(), context={"request": None, "current_session_id": "x"}
    )
    built_by_drf = _described(serializers.ModelSerializer.get_fields(with_instance))

    assert cached == built_by_drf


def test_each_serializer_gets_its_own_fields_bound_to_itself():
    first, second = UserSerializer(), UserSerializer()

    assert first.fields["email"] is not second.fields["email"]
    assert first.fields["email"].parent is first
    assert second.fields["email"].parent is second


def test_a_serializer_still_renders_its_object():
    user = User(email="ada@example.com", first_name="Ada", last_name="Lovelace")

    first, second = UserSerializer(user).data, UserSerializer(User(email="bob@example.com")).data

    assert (first["email"], first["first_name"], second["email"], second["first_name"]) == (
        "ada@example.com",
        "Ada",
        "bob@example.com",
        "",
    )
