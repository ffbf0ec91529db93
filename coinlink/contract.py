"""The client contract's shapes (/work/shared/API.md, docs/api.md), defined once for every app.

The timestamp format, the JSON encoding of values the models hold, the error body as the OpenAPI
schema describes it (`coinlink.errors` builds the bodies themselves), and the rule for keys a
request body may not carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, overload
from uuid import UUID

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


# --- timestamps -------------------------------------------------------------------------------
def timestamp(moment: datetime, *, timespec: str = "auto") -> str:
    """ISO 8601 in UTC with a `Z`, as DRF renders every REST timestamp (`auto`: microseconds when non-zero)."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


@overload
def timestamp_or_none(moment: datetime) -> str: ...
@overload
def timestamp_or_none(moment: datetime | None) -> str | None: ...
def timestamp_or_none(moment: datetime | None) -> str | None:
    """`timestamp`, with None (never happened) passed through."""
    return None if moment is None else timestamp(moment)


def timestamp_at(epoch: float) -> str:
    """A Unix time as a contract timestamp, always with microseconds (the feed's frames keep one width)."""
    return timestamp(datetime.fromtimestamp(epoch, UTC), timespec="microseconds")


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for what our dicts hold besides JSON types: Decimal, datetime, UUID."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# --- the error body, for the OpenAPI schema -----------------------------------------------------
class ErrorSerializer(serializers.Serializer):
    """The contract's error shape."""

    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(  # type: ignore[assignment]  # contract field name; DRF's metaclass takes it off the class
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    trace_id = serializers.CharField()


def error_responses(descriptions: Mapping[int, str], *codes: int) -> dict[int, OpenApiResponse]:
    """An operation's error responses for `extend_schema`: each code with its app's description (304 has no body)."""
    return {
        code: OpenApiResponse(None if code == 304 else ErrorSerializer, description=descriptions[code])
        for code in codes
    }


# --- request bodies ---------------------------------------------------------------------------
class RejectUnknownFieldsMixin(serializers.Serializer):
    """A key the serializer does not define is a 400, not silently dropped; so is a read-only one.

    `read_only_echo = True` accepts (and ignores) read-only keys, for resources a client may PUT back
    as it read them (docs/api.md: notification settings and their `email_paused_reason`).
    """

    read_only_echo: ClassVar[bool] = False

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {key: [self._refusal(key)] for key in data if not self._accepts(key)}
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def _accepts(self, key: str) -> bool:
        field = self.fields.get(key)
        return field is not None and (self.read_only_echo or not field.read_only)

    def _refusal(self, key: str) -> str:
        return "This field is read-only." if key in self.fields else "Unknown field."
