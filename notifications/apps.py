from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from notifications import services
        from notifications.models import Alert

        pre_delete.connect(services.alert_deleting, sender=Alert, dispatch_uid="notifications.alert_deleting")
