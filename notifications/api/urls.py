from django.urls import include, path

from notifications.api import views

# Grouped under their common prefix, so the list's siblings are tried only for its sub-paths (URL
# resolution tries every pattern in order; docs/performance.md).
urlpatterns = [
    path("v2/alerts", views.AlertListView.as_view(), name="alert-list"),
    path("v2/alerts/<uuid:alert_id>", views.AlertDetailView.as_view(), name="alert-detail"),
    path("v2/notifications", views.NotificationListView.as_view(), name="notification-list"),
    path(
        "v2/notifications/",
        include(
            [
                path("read-all", views.NotificationReadAllView.as_view(), name="notification-read-all"),
                path("unread-count", views.NotificationUnreadCountView.as_view(), name="notification-unread"),
                path("settings", views.NotificationSettingsView.as_view(), name="notification-settings"),
                path("<uuid:notification_id>", views.NotificationDetailView.as_view(), name="notification-detail"),
                path("<uuid:notification_id>/read", views.NotificationReadView.as_view(), name="notification-read"),
            ]
        ),
    ),
]
