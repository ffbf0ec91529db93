"""A bare Django view returning a constant 2 kB JSON: the baseline the hot path is measured against.

Routed only by the bench's own URLconf (bench/urls.py, under DJANGO_SETTINGS_MODULE=bench.settings);
the product never routes it.
"""

import json

from django.http import HttpResponse

_ROWS = [{"symbol": f"S{i:02d}", "price": 12345.678901, "change_percent_24h": -1.2345} for i in range(24)]
_BODY = json.dumps({"data": _ROWS, "pad": ""}, separators=(",", ":"))
_BODY = _BODY.replace('"pad":""', '"pad":"' + "x" * (2048 - len(_BODY)) + '"').encode()


def bench_constant(request):
    return HttpResponse(_BODY, content_type="application/json")
