"""Proving an address by mail: password reset, email verification and email change.

Requests only enqueue a task; the task looks the account up, issues the token and sends the mail.
So a request for an address with an account and one without do the same work in the same time, and
a raw token never leaves the worker except in the mail itself.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from accounts import onetime
from accounts.emails import inbox_budget_left
from accounts.exceptions import InvalidOneTimeToken, ValidationFailed
from accounts.models import User
from accounts.onetime import Purpose
from accounts.services import (
    PASSWORD_MAX_LENGTH,
    _email,
    _password_validate,
    task_enqueue,
    user_password_store,
)

logger = logging.getLogger("accounts")

# Link mails one inbox may receive an hour, summed over every account and flow that names it.
LINK_MAILS_PER_HOUR = 10


# --- password reset ----------------------------------------------------------------------------


def password_reset_request(*, email: str) -> None:
    """Have a reset link mailed to `email` if it has an account; the caller cannot tell which."""
    from accounts.tasks import password_reset_mail

    task_enqueue(password_reset_mail, email=_email(email))


def password_reset_mail_send(*, email: str) -> bool:
    """Issue a reset token for the active account of `email` and mail its link; False when there is none."""
    user = User.objects.filter(email=email, is_active=True).first()
    if user is None:
        return False
    return _link_mail(user=user, purpose=Purpose.PASSWORD_RESET, to=user.email, page="reset-password")


def password_reset_confirm(*, token: str, new_password: str) -> None:
    """Set the new password; every session ends, and the user hears of it.

    A weak password rolls the claim back, so the link still works for a better one. The link came to
    the address, so the address is proven too.
    """
    with transaction.atomic():
        user = _claimed_user(token=token, purpose=Purpose.PASSWORD_RESET)
        _password_validate(new_password, user=user, field="new_password")
        user.is_verified = True
        user_password_store(user=user, password=new_password, also=("is_verified",))


# --- email verification ------------------------------------------------------------------------


def email_verify_mail_send(*, user_id: str) -> bool:
    """Mail a verification link to the user's current address; False when there is nothing to verify."""
    user = User.objects.filter(pk=user_id, is_active=True, is_verified=False).first()
    if user is None:
        return False
    return _link_mail(user=user, purpose=Purpose.EMAIL_VERIFY, to=user.email, page="verify-email")


def email_verify_confirm(*, token: str) -> User:
    with transaction.atomic():
        user = _claimed_user(token=token, purpose=Purpose.EMAIL_VERIFY)
        User.objects.filter(pk=user.pk).update(is_verified=True)
    user.is_verified = True
    return user


# --- email change ------------------------------------------------------------------------------


def email_change_request(*, user: User, new_email: str, password: str) -> None:
    """Check the password, then have the new address confirm; a taken address looks the same to the caller."""
    if len(password) > PASSWORD_MAX_LENGTH or not user.check_password(password):
        raise ValidationFailed({"password": ["Your password is incorrect."]})
    email = _email(new_email)
    if email == user.email:
        raise ValidationFailed({"new_email": ["This is already your address."]})
    from accounts.tasks import email_change_mail

    task_enqueue(email_change_mail, user_id=str(user.pk), new_email=email)


def email_change_mail_send(*, user_id: str, new_email: str) -> bool:
    """Tell the current address; send the confirm link to the new one unless another account has it."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    account_mail_send(kind="email_change_notice", to=user.email, user=user, new_email=new_email)
    if User.objects.filter(email=new_email).exists():
        return False  # its owner learns nothing, and neither does the requester
    return _link_mail(user=user, purpose=Purpose.EMAIL_CHANGE, to=new_email, page="confirm-email")


def email_change_confirm(*, token: str) -> User:
    """Make the token's address the login (and verified); the unique constraint settles a race for it."""
    with transaction.atomic():
        row = onetime.token_claim(token=token, purpose=Purpose.EMAIL_CHANGE)
        user = row.user
        if not user.is_active:
            raise InvalidOneTimeToken()
        try:
            with transaction.atomic():
                User.objects.filter(pk=user.pk).update(email=row.email, is_verified=True)
        except IntegrityError:
            raise ValidationFailed({"token": ["This address now belongs to another account."]}) from None
        # Links mailed to the old address must not act on the account any more.
        onetime.tokens_void(user_id=user.pk, purpose=Purpose.PASSWORD_RESET)
        onetime.tokens_void(user_id=user.pk, purpose=Purpose.EMAIL_VERIFY)
    user.email, user.is_verified = row.email, True
    return user


# --- shared ------------------------------------------------------------------------------------


def _claimed_user(*, token: str, purpose: str) -> User:
    """The active user a live token was sent to, at the address it was sent to; the token is used up."""
    row = onetime.token_claim(token=token, purpose=purpose)
    if not row.user.is_active or row.user.email != row.email:
        raise InvalidOneTimeToken()
    return row.user


def _link_mail(*, user: User, purpose: str, to: str, page: str) -> bool:
    """Issue a token for `purpose` (older ones die) and mail `to` the SPA page that takes it.

    An inbox gets at most LINK_MAILS_PER_HOUR links, however many accounts name it (sign-ups,
    email changes and resends in a stranger's name must not flood them).
    """
    if not inbox_budget_left(to, group="account-link-mail", per_hour=LINK_MAILS_PER_HOUR):
        logger.warning("%s link not mailed: the hourly budget of its inbox is spent", purpose)
        return False
    ttl = settings.PASSWORD_RESET_TTL if purpose == Purpose.PASSWORD_RESET else settings.EMAIL_VERIFY_TTL
    token = onetime.token_issue(user=user, purpose=purpose, email=to, ttl_seconds=ttl)
    link = f"{settings.FRONTEND_URL}/{page}?{urlencode({'token': token})}"
    account_mail_send(kind=purpose, to=to, user=user, link=link)
    return True


def password_changed_mail_send(*, user_id: str) -> bool:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    account_mail_send(kind="password_changed", to=user.email, user=user)
    return True


def account_mail_send(*, kind: str, to: str, **context) -> None:
    """Render accounts/email/<kind>.{txt,html} and its subject and send them; SMTP errors propagate (tasks retry)."""
    context = {**context, "frontend_url": settings.FRONTEND_URL}
    subject = render_to_string(f"accounts/email/{kind}_subject.txt", context).strip()
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string(f"accounts/email/{kind}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"accounts/email/{kind}.html", context), "text/html")
    message.send()
