"""django-csp's middleware, with the header that (almost) every response gets built once per process.

django-csp builds the policy string from settings on every response, twice (enforced and report
only): about a tenth of a signed-in API call's CPU (docs/performance.md). Here a response that no
view customised (csp.decorators) and whose request used no nonce gets the same string, built once;
everything else, and any setting this shortcut does not cover, goes through django-csp unchanged.
"""

from __future__ import annotations

import functools

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as _CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# What csp.decorators set on a response to change or skip its policy.
_VIEW_OVERRIDES = tuple(f"_csp_{part}{ro}" for part in ("config", "update", "replace", "exempt") for ro in ("", "_ro"))


class CSPMiddleware(_CSPMiddleware):
    def process_response(self, request, response):
        policy = _fixed_policy()
        if policy is None or getattr(request, "_csp_nonce", None) is not None or _overridden(response):
            return super().process_response(request, response)
        if HEADER not in response:
            response[HEADER] = policy
        # As django-csp does: a nonce asked for after the header is written is an error, not a silent gap.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


def _overridden(response) -> bool:
    return any(hasattr(response, name) for name in _VIEW_OVERRIDES)


@functools.cache
def _fixed_policy() -> str | None:
    """The enforced policy, when the settings make it the same for every plain response; else None."""
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
    if (
        settings.DEBUG
        or policy.get("EXCLUDE_URL_PREFIXES")
        or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
    ):
        return None  # debug pages, excluded paths and report-only headers: django-csp decides per response
    return build_policy() or None


@receiver(setting_changed)
def _settings_changed(*, setting, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY") or setting == "DEBUG":
        _fixed_policy.cache_clear()
