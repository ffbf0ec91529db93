from django.conf import settings
from django.contrib.auth.hashers import BCryptSHA256PasswordHasher


class ConfiguredBCryptSHA256PasswordHasher(BCryptSHA256PasswordHasher):
    """Django's BCryptSHA256 hasher with rounds from BCRYPT_ROUNDS.

    A hash made with fewer rounds is upgraded at the next successful login. A hash with more rounds
    is kept: lowering BCRYPT_ROUNDS (say, by mistake in production) must never weaken stored hashes.
    """

    @property
    def rounds(self) -> int:  # type: ignore[override]
        return settings.BCRYPT_ROUNDS

    def must_update(self, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return int(decoded["work_factor"]) < self.rounds
