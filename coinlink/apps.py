from django.apps import AppConfig


class CoinlinkConfig(AppConfig):
    name = "coinlink"
    verbose_name = "CoinLink"

    def ready(self) -> None:
        from coinlink import wiring

        wiring.connect()
