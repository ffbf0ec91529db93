"""Request and response shapes of /api/v2/auth/ and /api/v2/user/ (types and bounds only, no logic)."""

from __future__ import annotations

import functools
import zoneinfo

from django.conf import settings
from rest_framework import serializers

from accounts.emails import MAX_LENGTH as EMAIL_MAX_LENGTH
from accounts.models import Preferences, Session, User
from accounts.onetime import TOKEN_MAX_LENGTH
from accounts.services import PASSWORD_MAX_LENGTH, PREFERENCE_FIELDS
from coinlink.contract import RejectUnknownFieldsMixin
from coinlink.serializers import ModelSerializer
from markets.vocabulary import SYMBOL

WATCHLIST_MAX = 100


class StrictCharField(serializers.CharField):
    """A string and only a string: 123 or true is a type error, not "123" or "True"."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _password_field(**kwargs) -> StrictCharField:
    return StrictCharField(
        max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, style={"input_type": "password"}, **kwargs
    )


def _name_field() -> StrictCharField:
    return StrictCharField(max_length=150, required=False, allow_blank=True, default="")


def _no_control_characters(value: str) -> str:
    if any(not c.isprintable() for c in value):
        raise serializers.ValidationError("Must not contain control characters.")
    return value


# --- auth requests -----------------------------------------------------------------------------


class SignupSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    email = StrictCharField(max_length=EMAIL_MAX_LENGTH)
    password = _password_field()
    first_name = _name_field()
    last_name = _name_field()

    validate_first_name = staticmethod(_no_control_characters)
    validate_last_name = staticmethod(_no_control_characters)


class LoginSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    email = StrictCharField(max_length=EMAIL_MAX_LENGTH)
    password = _password_field()


class RefreshSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    refresh_token = StrictCharField(max_length=4096)


class LogoutSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    refresh_token = StrictCharField(max_length=4096)


class PasswordChangeSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    old_password = _password_field()
    new_password = _password_field()


class PasswordResetSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    email = StrictCharField(max_length=EMAIL_MAX_LENGTH)


def _token_field() -> StrictCharField:
    return StrictCharField(max_length=TOKEN_MAX_LENGTH, help_text="The `token` query parameter of the mailed link.")


class PasswordResetConfirmSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    token = _token_field()
    new_password = _password_field()


class MailedTokenSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    token = _token_field()


class EmailChangeSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    new_email = StrictCharField(max_length=EMAIL_MAX_LENGTH)
    password = _password_field()


# --- auth responses ----------------------------------------------------------------------------


class UserSerializer(ModelSerializer):
    class Meta:
        model = User
        fields = ("id", "email", "first_name", "last_name", "is_verified", "created_at")
        read_only_fields = fields


class TokensSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")


class AuthResultSerializer(serializers.Serializer):
    user = UserSerializer()
    tokens = TokensSerializer()


class RefreshResultSerializer(serializers.Serializer):
    tokens = TokensSerializer()


class UserResultSerializer(serializers.Serializer):
    user = UserSerializer()


class AcceptedSerializer(serializers.Serializer):
    detail = serializers.CharField()


class VerifyResultSerializer(serializers.Serializer):
    user = UserSerializer()
    message = serializers.CharField()


# --- user --------------------------------------------------------------------------------------


class ProfileSerializer(RejectUnknownFieldsMixin, ModelSerializer):
    first_name = StrictCharField(max_length=150, allow_blank=True, required=False)
    last_name = StrictCharField(max_length=150, allow_blank=True, required=False)
    last_login_at = serializers.DateTimeField(source="last_login", read_only=True, allow_null=True)

    validate_first_name = staticmethod(_no_control_characters)
    validate_last_name = staticmethod(_no_control_characters)

    class Meta:
        model = User
        fields = ("id", "email", "first_name", "last_name", "is_verified", "created_at", "last_login_at")
        read_only_fields = ("id", "email", "is_verified", "created_at", "last_login_at")


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _languages() -> dict[str, str]:
    return {code.lower(): code.lower() for code, _ in settings.LANGUAGES}


class PreferencesSerializer(RejectUnknownFieldsMixin, ModelSerializer):
    theme = serializers.ChoiceField(choices=Preferences.Theme.choices)
    language = StrictCharField(max_length=16, help_text="A language code such as en, de or pt-br.")
    currency = serializers.ChoiceField(choices=Preferences.Currency.choices)
    timezone = StrictCharField(max_length=64, help_text="An IANA time zone such as Europe/Paris.")
    watchlist = serializers.ListField(
        child=StrictCharField(max_length=15), max_length=WATCHLIST_MAX, help_text="Symbols of catalogue assets."
    )
    sound_enabled = StrictBooleanField()

    class Meta:
        model = Preferences
        fields = PREFERENCE_FIELDS

    def validate_language(self, value: str) -> str:
        code = value.strip().lower().replace("_", "-")
        languages = _languages()
        if code in languages:
            return code
        if code.split("-")[0] in languages:
            return code.split("-")[0]
        raise serializers.ValidationError(f"Unknown language {value[:16]!r}.")

    def validate_timezone(self, value: str) -> str:
        if value not in _timezones():
            raise serializers.ValidationError(f"Unknown time zone {value[:64]!r}; use an IANA name like Europe/Paris.")
        return value

    def validate_watchlist(self, value: list[str]) -> list[str]:
        symbols = list(dict.fromkeys(s.strip().upper() for s in value))
        malformed = [s for s in symbols if not SYMBOL.match(s)]
        if malformed:
            raise serializers.ValidationError(f"Not a symbol: {', '.join(malformed[:5])}.")
        return symbols  # whether the catalogue has them is for accounts.services.preferences_update


class UserStatsSerializer(serializers.Serializer):
    total_logins = serializers.IntegerField(help_text="Sign-ins (sign-up and logins) on record.")
    last_login = serializers.DateTimeField(allow_null=True)
    account_age_days = serializers.IntegerField()
    active_sessions = serializers.IntegerField()
    total_sessions = serializers.IntegerField(help_text="Live sessions and those ended in the last 30 days.")


class SessionSerializer(ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = ("id", "created_at", "last_used_at", "expires_at", "user_agent", "ip_address", "current")
        read_only_fields = fields

    def get_current(self, session: Session) -> bool:
        return str(session.pk) == self.context.get("current_session_id")
