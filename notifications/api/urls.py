from django.urls import path

from notifications.api import views

urlpatterns = [
    path("v2/alerts", views.AlertListView.as_view(), name="alert-list"),
    path("v2/alerts/<uuid:alert_id>", views.AlertDetailView.as_view(), name="alert-detail"),
    path("v2/notifications", views.NotificationListView.as_view(), name="notification-list"),
    path("v2/notifications/read-all", views.NotificationReadAllView.as_view(), name="notification-read-all"),
    path("v2/notifications/unread-count", views.NotificationUnreadCountView.as_view(), name="notification-unread"),
    path("v2/notifications/settings", views.NotificationSettingsView.as_view(), name="notification-settings"),
    path("v2/notifications/<uuid:notification_id>", views.NotificationDetailView.as_view(), name="notification-detail"),
    path(
        "v2/notifications/<uuid:notification_id>/read", views.NotificationReadView.as_view(), name="notification-read"
    ),
]
