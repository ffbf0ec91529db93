from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from accounts import schema, services  # noqa: F401 - schema registers the OpenAPI auth scheme
        from accounts.models import User

        pre_delete.connect(services.user_deleting, sender=User, dispatch_uid="accounts.user_deleting")
