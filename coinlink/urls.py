from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from coinlink import ops
from coinlink.preferences import PreferencesView

# Resolved in order: the market reads (most of the traffic) are tried first.
urlpatterns = [
    path("api/", include("markets.api.urls")),
    path("health", ops.health, name="health"),
    path("livez", ops.health, name="livez"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from drf-spectacular-sidecar's static files; the split view serves its start-up
    # script from `/api/docs?script`, so the page has no inline script for the CSP to allow.
    path(
        "api/docs",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="coinlink/swagger_ui.html"),
        name="docs",
    ),
    # accounts' preferences and four notification settings, in one resource (coinlink/preferences.py)
    path("api/v2/user/preferences", PreferencesView.as_view(), name="user-preferences"),
    path("api/", include("accounts.api.urls")),
    path("api/", include("notifications.api.urls")),
    path("", include("realtime.urls")),
    # Browsers ask every site for one; a 404 here is an error in each page's console.
    path("favicon.ico", RedirectView.as_view(url=static("coinlink/favicon.svg")), name="favicon"),
]

handler400 = "coinlink.errors.bad_request"
handler403 = "coinlink.errors.permission_denied"
handler404 = "coinlink.errors.page_not_found"
handler500 = "coinlink.errors.server_error"
