"""Password policy hooks in AUTH_PASSWORD_VALIDATORS: a strength estimate, and sessions ending on a change."""

from __future__ import annotations

import threading

from django.core.exceptions import ValidationError
from zxcvbn import zxcvbn

# zxcvbn's own ceiling: its matching grows fast with length, and 72 characters of a weak pattern
# are weak whatever follows.
ESTIMATE_MAX_LENGTH = 72
# zxcvbn keeps each call's user inputs in a module-global dictionary: two threads estimating at once
# would score one password against the other user's email and names.
_ESTIMATE_LOCK = threading.Lock()


class StrengthValidator:
    """Rejects passwords zxcvbn scores below `min_score` (0-4): repeats, sequences, keyboard rows, common words.

    Length rules pass "aaaaaaaaaaaa" and "qwertyuiopas"; an estimate of guesses does not.
    """

    def __init__(self, min_score: int = 3):
        self.min_score = min_score

    def validate(self, password: str, user=None) -> None:
        inputs = [value for value in (getattr(user, "email", ""), *_names(user)) if value]
        with _ESTIMATE_LOCK:
            result = zxcvbn(password[:ESTIMATE_MAX_LENGTH], user_inputs=inputs)
        if result["score"] >= self.min_score:
            return
        feedback = result["feedback"]
        hints = " ".join(part for part in (feedback.get("warning"), *feedback.get("suggestions", [])) if part)
        raise ValidationError(
            f"This password is too easy to guess. {hints}".strip(), code="password_too_weak", params={}
        )

    def get_help_text(self) -> str:
        return "Your password must be hard to guess: avoid repeats, sequences, keyboard rows and common words."


class SessionsEndOnChange:
    """Checks nothing; Django calls `password_changed` after any `set_password` + `save`.

    That is every route a password takes (the API, a reset, the admin, `manage.py changepassword`,
    a shell), but not a hash upgrade at login. Whoever held the old password is signed out, pending
    reset links die, and a user whose account was in use hears of it.
    """

    def validate(self, password: str, user=None) -> None:
        return None

    def password_changed(self, password: str, user=None) -> None:
        if user is not None and user.pk is not None:
            from accounts.services import user_password_changed

            user_password_changed(user=user)

    def get_help_text(self) -> str:
        return "Changing your password signs you out everywhere."


def _names(user) -> tuple[str, str]:
    return (getattr(user, "first_name", ""), getattr(user, "last_name", ""))
