"""A ModelSerializer that reads its model once per class, not once per request."""

from __future__ import annotations

import copy
from typing import ClassVar

from rest_framework import serializers


# No class docstring: drf-spectacular describes a serializer by the first docstring in its MRO, so one
# here would become the description of every response schema that has none of its own.
class ModelSerializer(serializers.ModelSerializer):
    _coinlink_built_fields: ClassVar[dict]  # set per subclass by get_fields, never on this class
    # DRF's ModelSerializer, with the fields it derives from the model built once per class.
    #
    # DRF rebuilds them from the model's metadata every time a serializer is instantiated, which is
    # every request here: 340-480 µs of CPU a serializer on the 2026-11-26 guest (bench/api_cpu.py,
    # docs/performance.md). DRF leaves them uncached (encode/django-rest-framework#2504, #7093)
    # because a subclass may vary `get_fields` by instance or context; ours do not, and
    # tests/coinlink/test_serializers.py holds every subclass to that. Each instance gets a deep copy,
    # which is how DRF already hands out declared fields: Field.__deepcopy__ re-creates the field
    # from its constructor arguments, unbound.

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_coinlink_built_fields")
        if built is None:
            built = super().get_fields()
            # Two threads may both build it the first time; they build the same thing.
            cls._coinlink_built_fields = built
        return copy.deepcopy(built)
