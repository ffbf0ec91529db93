"""DRF's content negotiation, its answer remembered per process for each Accept header."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation

# Real clients send few distinct Accept headers (the SPA's, a browser's, curl's); the bound keeps a
# client that sends a new one on every request from growing the table.
_REMEMBERED_MAX = 256
_ACCEPT_MAX_LENGTH = 256


class RememberedContentNegotiation(DefaultContentNegotiation):
    """DefaultContentNegotiation, which parses and ranks the Accept header on every request (~35 µs
    of a signed-in call's CPU, docs/performance.md): its answer depends only on the view's renderer
    classes and the header, so it is worked out once per pair. A refusal (406) is never remembered
    and a `?format=` or format suffix always takes DRF's own path, so every answer is DRF's.
    """

    _chosen: dict[tuple[tuple[type, ...], str], tuple[int, str]] = {}

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if format_suffix or len(accept) > _ACCEPT_MAX_LENGTH or self._format_asked(request):
            return super().select_renderer(request, renderers, format_suffix)
        key = (tuple(type(renderer) for renderer in renderers), accept)
        chosen = self._chosen.get(key)
        if chosen is not None:
            return renderers[chosen[0]], chosen[1]
        renderer, media_type = super().select_renderer(request, renderers, format_suffix)  # or NotAcceptable
        if len(self._chosen) >= _REMEMBERED_MAX:
            self._chosen.clear()
        self._chosen[key] = (renderers.index(renderer), media_type)
        return renderer, media_type

    def _format_asked(self, request) -> bool:
        name = self.settings.URL_FORMAT_OVERRIDE
        # Without a query string there is no `?format=`, and no QueryDict needs parsing to say so.
        return bool(name and request.META.get("QUERY_STRING")) and name in request.query_params
