"""Log formatting: one JSON object per line in production, a readable line in development."""

from __future__ import annotations

import functools
import json
import logging
import re
from datetime import UTC, datetime

from coinlink import context

# Whatever code logs, these never leave the process.
_SECRET_KEYS = re.compile(r"(password|token|secret|authorization|cookie|api[_-]?key|signature|sessionid)", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
# `password=...`, `'token': '...'`, `"api_key": "..."` inside an already formatted string.
_SECRET_PAIR = re.compile(
    r"""(["']?[\w-]*(?:password|token|secret|authorization|cookie|api[_-]?key|signature|sessionid)[\w-]*["']?\s*[:=]\s*)(?!\[redacted\])"""
    r"""(?:"[^"]*"|'[^']*'|[^\s,&;}\]]+)""",
    re.I,
)
# _SECRET_PAIR backtracks at every position of every word (hundreds of microseconds per access-log
# line); a string without any of its keywords cannot match it, and this plain search says so cheaply.
_SECRET_HINT = re.compile(r"password|token|secret|authorization|cookie|api[_-]?key|signature|sessionid", re.I)
# Most strings (paths, ids, methods) hold nothing any of the patterns above could match: one search
# tells, instead of three substitutions on every value of every access-log line.
_MAYBE_SECRET = re.compile(_SECRET_HINT.pattern + r"|bearer|eyJ", re.I)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def scrub(value):
    """Redact secrets from a log value, recursively."""
    if isinstance(value, str):
        if not _MAYBE_SECRET.search(value):
            return value
        value = _JWT.sub("[redacted]", _BEARER.sub(r"\1[redacted]", value))
        return _SECRET_PAIR.sub(r"\1[redacted]", value) if _SECRET_HINT.search(value) else value
    if isinstance(value, dict):
        return {k: "[redacted]" if _is_secret_key(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key) -> bool:
    """Keys come from a small fixed set (the log calls' extras), so the answer is remembered."""
    return bool(_SECRET_KEYS.search(str(key)))


def safe_message(record: logging.LogRecord) -> str:
    """The record's message with secrets redacted, arguments first (a dict logged with %s keeps its keys)."""
    if record.args:
        try:
            args = record.args
            safe = scrub(args) if isinstance(args, dict) else tuple(scrub(a) for a in args)
            return scrub(str(record.msg) % safe)
        except (TypeError, ValueError, KeyError):
            pass
    return scrub(record.getMessage())


class RequestContextFilter(logging.Filter):
    """Stamps every record with the request id, trace id and user id of the current context."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = context.request_id.get()
        if not getattr(record, "trace_id", None):
            record.trace_id = context.trace_id.get()
        if not getattr(record, "user_id", None):
            record.user_id = context.user_id.get()
        return True


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": safe_message(record),
        }
        payload.update(scrub({k: v for k, v in _extras(record).items() if v is not None}))
        if record.exc_info:
            payload["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in scrub(_extras(record)).items() if v is not None)
        clock = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{clock} {record.levelname:<7} {record.name}: {safe_message(record)}"
        if extras:
            line += f"  [{extras}]"
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line
