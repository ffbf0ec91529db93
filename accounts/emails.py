"""One canonical form for email addresses, so look-alike spellings cannot make a second account."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_LENGTH = 254


def email_normalize(value: str) -> str:
    """NFKC, trimmed, lower-case, ASCII local part, IDNA (punycode) domain; ValidationError otherwise.

    NFKC folds full-width and other compatibility forms (full-width "owner" is "owner"). Non-ASCII local
    parts are refused: mail systems disagree about them and they are the home of confusables. A
    non-ASCII domain is stored as its `xn--` form, which makes a look-alike domain visibly different.
    """
    if len(value) > MAX_LENGTH * 4:  # cheap bound before any Unicode work
        raise ValidationError(f"Ensure this field has no more than {MAX_LENGTH} characters.")
    email = unicodedata.normalize("NFKC", value).strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise ValidationError("Enter a valid email address.")
    if any(unicodedata.category(c)[0] in "CZ" for c in email):  # controls, zero-width, spaces
        raise ValidationError("Enter a valid email address.")
    if not local.isascii():
        raise ValidationError("Use an email address whose part before the @ is plain ASCII.")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValidationError("Enter a valid email address.") from None
    email = f"{local}@{domain}"
    if len(email) > MAX_LENGTH:
        raise ValidationError(f"Ensure this field has no more than {MAX_LENGTH} characters.")
    validate_email(email)
    return email


def email_limit_key(value: str) -> str:
    """The sign-in limits' key: every spelling that signs in as one account counts against one key.

    Both sign-in paths authenticate a folded spelling: the API `email_normalize`, Django's admin form
    NFKC of the stripped value (then an exact match). The key folds the same way, so full-width or
    mathematical look-alikes and stray whitespace meet the account's counter, not a fresh one. A value
    that is no address at all cannot sign in; it still gets a stable, bounded key.
    """
    folded = unicodedata.normalize("NFKC", value[: MAX_LENGTH * 4].strip())
    try:
        return email_normalize(folded)
    except ValidationError:
        return folded.strip().lower()[:MAX_LENGTH]


def inbox_budget_left(address: str, *, group: str, per_hour: int) -> bool:
    """Count one mail to this inbox against its hourly budget in `group`; False once that is spent.

    `+tags` fold into one inbox, so more accounts for one inbox share its budget. Fails open: a cache
    outage must not stop mail (the request limits in front of the senders fail closed).
    """
    from coinlink.errors import RateLimited
    from coinlink.ratelimit import limit

    local, _, domain = address.lower().partition("@")
    inbox = f"{local.split('+', 1)[0]}@{domain}"
    try:
        limit(None, group=group, key=lambda group, request: inbox, rate=f"{per_hour}/h", fail_open=True)
    except RateLimited:
        return False
    return True
