"""The probe endpoints in the OpenAPI schema: API.md names them, and the schema must agree with it.

They are plain Django views on purpose (no DRF, nothing between the probe and the answer), so
drf-spectacular cannot see them; this postprocessing hook adds what they answer.
"""

from __future__ import annotations

from coinlink.ops import CHECKS

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATUS_OK = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
    "required": ["status"],
}
_CHECK = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "description": "ok or fail; market_data: ok or stale; market_stream: ok or down"},
        "latency_ms": {"type": "number"},
        "error": {"type": "string", "description": "The failure's type; the details are in the log."},
    },
    "required": ["status", "latency_ms"],
    "additionalProperties": True,
}
_READINESS = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "fail"]},
        "checks": {
            "type": "object",
            "properties": {name: _CHECK for name in CHECKS},
            "required": list(CHECKS),
        },
    },
    "required": ["status", "checks"],
}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(operation_id: str, summary: str, responses: dict) -> dict:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["ops"],
            "security": [],
            "responses": responses,
        }
    }


def ops_paths(result, generator, request, public):
    liveness = {"200": _json("Alive. Touches no dependency.", _STATUS_OK)}
    result["paths"].update(
        {
            "/health": _operation("health", "Liveness", liveness),
            "/livez": _operation("livez", "Liveness (alias of /health)", liveness),
            "/readyz": _operation(
                "readyz",
                "Readiness: every dependency checked",
                {
                    "200": _json("Ready, or degraded (a non-critical check failed).", _READINESS),
                    "503": _json("Not ready: a critical dependency failed.", _READINESS),
                },
            ),
            "/metrics": _operation(
                "metrics",
                "Prometheus metrics",
                {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "403": _json("Not from METRICS_ALLOWED_NETWORKS, without METRICS_TOKEN.", _ERROR),
                },
            ),
        }
    )
    return result
