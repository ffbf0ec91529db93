"""DRF's OPTIONS answer, without the per-view introspection that can fail."""

from __future__ import annotations

from rest_framework.metadata import SimpleMetadata


class ActionlessMetadata(SimpleMetadata):
    """OPTIONS answers name, description, renders and parses, but no `actions`.

    SimpleMetadata builds `actions` by calling each view's `get_object()` and serializer: a 500 on
    detail views that look objects up their own way, and an extra query per OPTIONS elsewhere. The
    OpenAPI schema (/api/schema) is where clients learn the fields.
    """

    def determine_actions(self, request, view):
        return {}
