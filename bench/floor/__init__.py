"""The physical floor of a signed-in REST call: a minimal Django project measured beside CoinLink."""
