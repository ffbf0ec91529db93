"""The client contract's shapes (/work/shared/API.md, docs/api.md), defined once for every app.

The timestamp format, the JSON encoding of values the models hold, and the error body as the OpenAPI
schema describes it (`coinlink.errors` builds the bodies themselves).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from rest_framework import serializers


# --- timestamps -------------------------------------------------------------------------------
def timestamp(moment: datetime, *, timespec: str = "auto") -> str:
    """ISO 8601 in UTC with a `Z`, as DRF renders every REST timestamp (`auto`: microseconds when non-zero)."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


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
