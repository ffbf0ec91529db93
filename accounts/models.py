from __future__ import annotations

import uuid
from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields):
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A CoinLink user: the email is the login, the id a UUID that never leaks a count."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    is_verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.email


class Session(models.Model):
    """One signed-in device: created at sign-up or login, ended by logout, revocation or expiry.

    Access and refresh tokens carry this row's id as their `sid` claim; `refresh_jti` is the one
    refresh token of the session that may still be exchanged (rotation claims it with a conditional UPDATE).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    user_agent = models.CharField(max_length=512, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    device_fingerprint = models.CharField(max_length=64, db_index=True)
    refresh_jti = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ("-last_used_at",)
        indexes = [
            models.Index(fields=["user", "revoked_at", "expires_at"], name="accounts_session_active_idx"),
            models.Index(fields=["expires_at"], name="accounts_session_expires_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} session {self.id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class KnownDevice(models.Model):
    """A device (user agent + network) a user has signed in from; a sign-in from an unknown one is announced.

    Kept after its sessions are purged, so "new device" and the sign-in count survive the purge.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="known_devices")
    fingerprint = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=512, blank=True)
    last_ip_address = models.GenericIPAddressField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    sign_ins = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "fingerprint"], name="accounts_device_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} device {self.fingerprint[:12]}"


class Preferences(models.Model):
    """A user's display preferences and watchlist (one row per user, created on first use).

    The notification switches the API shows beside them are notification settings (coinlink/preferences.py).
    """

    class Theme(models.TextChoices):
        DARK = "dark"
        LIGHT = "light"

    class Currency(models.TextChoices):
        USD = "usd"
        EUR = "eur"
        GBP = "gbp"

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="preferences")
    theme = models.CharField(max_length=8, choices=Theme.choices, default=Theme.DARK)
    language = models.CharField(max_length=16, default="en")
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    timezone = models.CharField(max_length=64, default="UTC")
    watchlist = models.JSONField(default=list, blank=True)
    sound_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class AccountToken(models.Model):
    """A one-time token mailed to prove control of an address: password reset, verification, email change.

    Only the SHA-256 of the token is stored: the token has 256 random bits, so a fast hash is enough,
    and a copy of the database hands out no resets. `email` is the address the token was sent to
    (for an email change, the new address); a token is good only while that still makes sense.
    """

    class Purpose(models.TextChoices):
        PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a password
        EMAIL_VERIFY = "email_verify"
        EMAIL_CHANGE = "email_change"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="account_tokens")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    digest = models.CharField(max_length=64, unique=True)
    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "purpose"], name="accounts_token_purpose_idx")]

    def __str__(self) -> str:
        return f"{self.purpose} token of {self.user_id}"
