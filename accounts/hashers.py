from django.conf import settings
from django.contrib.auth.hashers import BCryptSHA256PasswordHasher


class ConfiguredBCryptSHA256PasswordHasher(BCryptSHA256PasswordHasher):
    """Django's BCryptSHA256 hasher with rounds from BCRYPT_ROUNDS.

    Django upgrades a hash at the next successful login when its rounds differ (`must_update`).
    """

    @property
    def rounds(self) -> int:  # type: ignore[override]
        return settings.BCRYPT_ROUNDS
