"""The live page at `/`: the ticker table fed by `/ws`, so a newcomer sees the feed right after `scripts/run`."""

from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def live(request):
    return render(request, "realtime/live.html")
