"""Writes of `accounts`: sign-up, login, sessions and their tokens, passwords, profile, preferences."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts import onetime, session_cache, signals
from accounts.devices import device_fingerprint, ip_clean, user_agent_clean
from accounts.emails import email_normalize
from accounts.exceptions import InvalidCredentials, InvalidToken, TokenReused, ValidationFailed
from accounts.models import KnownDevice, Preferences, Session, User
from accounts.selectors import refresh_token_decode
from accounts.tokens import SESSION_CLAIM, SessionRefreshToken
from coinlink import metrics
from markets.selectors import symbols_known  # markets owns the catalogue

logger = logging.getLogger("accounts")

# Longest password hashed or checked: validators and hashing must stay cheap for any input.
PASSWORD_MAX_LENGTH = 256
# Ended sessions stay visible (admin, stats) this long before tokens_purge deletes them.
SESSION_HISTORY_DAYS = 30
# Live sessions per user; a new sign-in beyond it ends the least recently used one (bounded growth
# even under a credential-stuffing success or a script that logs in on every run).
MAX_ACTIVE_SESSIONS = 50
EMAIL_TAKEN = "This email address cannot be used for a new account."


@dataclass(frozen=True)
class ClientInfo:
    """Who is asking: the client address (proxy-aware) and user agent of the request."""

    ip_address: str | None
    user_agent: str

    @classmethod
    def from_request(cls, request) -> ClientInfo:
        from coinlink.net import client_ip

        user_agent = user_agent_clean(request.headers.get("User-Agent"))
        return cls(ip_address=ip_clean(client_ip(request)), user_agent=user_agent)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    session_id: str
    expires_in: int

    def as_contract(self) -> dict:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


def _count(action: str, outcome: str) -> None:
    metrics.AUTH_ATTEMPTS.labels(action=action, outcome=outcome).inc()


# --- sign-up and login -------------------------------------------------------------------------


def user_signup(
    *, email: str, password: str, first_name: str = "", last_name: str = "", client: ClientInfo
) -> tuple[User, IssuedTokens]:
    """Create the user, their preferences and a first session, all or nothing."""
    user = User(email=_email(email), first_name=first_name, last_name=last_name)
    _password_validate(password, user=user, field="password")
    if User.objects.filter(email=user.email).exists():
        _count("signup", "rejected")
        raise ValidationFailed({"email": [EMAIL_TAKEN]})
    # Hashed outside the transaction (a quarter second on purpose), and not with set_password: a first
    # password is no change, so Django's change hook must not announce one.
    user.password = make_password(password)
    user.last_login = timezone.now()
    try:
        with transaction.atomic():
            user.save(force_insert=True)
            Preferences.objects.create(user=user)
            _, tokens, _ = _session_start(user=user, client=client)
            email_verify_request(user=user)
    except IntegrityError:  # the same email signed up concurrently
        _count("signup", "rejected")
        raise ValidationFailed({"email": [EMAIL_TAKEN]}) from None
    _count("signup", "success")
    return user, tokens


def session_start(*, user: User, client: ClientInfo) -> IssuedTokens:
    """A session and its tokens for an already authenticated user (tests, trusted tooling)."""
    with transaction.atomic():
        _, tokens, _ = _session_start(user=user, client=client)
    return tokens


def user_login(*, email: str, password: str, client: ClientInfo) -> tuple[User, IssuedTokens]:
    """Check the credentials (unknown email and wrong password look the same) and start a session."""
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValidationFailed({"password": [f"Ensure this field has no more than {PASSWORD_MAX_LENGTH} characters."]})
    # ModelBackend hashes the password once even for an unknown email, so timing does not tell them
    # apart, and it upgrades a hash made with fewer bcrypt rounds than BCRYPT_ROUNDS on success.
    user = authenticate(None, email=_email(email), password=password)
    if user is None:
        _count("login", "failure")
        raise InvalidCredentials()
    with transaction.atomic():
        user.last_login = timezone.now()
        User.objects.filter(pk=user.pk).update(last_login=user.last_login)
        session, tokens, new_device = _session_start(user=user, client=client)
        transaction.on_commit(
            functools.partial(_announce_sign_in, user=user, session=session, new_device=new_device, client=client)
        )
    _count("login", "success")
    return user, tokens


def _email(value: str) -> str:
    try:
        return email_normalize(value)
    except ValidationError as error:
        raise ValidationFailed({"email": list(error.messages)}) from None


def _password_validate(password: str, *, user: User, field: str) -> None:
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValidationFailed({field: [f"Ensure this field has no more than {PASSWORD_MAX_LENGTH} characters."]})
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as error:
        raise ValidationFailed({field: list(error.messages)}) from None


def email_verify_request(*, user: User) -> None:
    """Have a verification link mailed to the user's address (a task issues the token and sends it)."""
    from accounts.tasks import email_verify_mail

    task_enqueue(email_verify_mail, user_id=str(user.pk))


def task_enqueue(task, **kwargs) -> None:
    """Enqueue after the commit; a broker outage loses that mail (logged) but never fails the request."""

    def send() -> None:
        try:
            task.delay(**kwargs)
        except Exception:
            logger.exception("could not enqueue %s", task.name)

    transaction.on_commit(send)


# --- sessions and tokens -----------------------------------------------------------------------


def _session_start(*, user: User, client: ClientInfo) -> tuple[Session, IssuedTokens, bool]:
    """A new session row with its first refresh token; True when the device is new for a returning user."""
    fingerprint = device_fingerprint(user_agent=client.user_agent, ip_address=client.ip_address)
    session = Session(user=user, user_agent=client.user_agent, ip_address=client.ip_address)
    session.device_fingerprint = fingerprint
    refresh = _refresh_token_new(user_id=str(user.pk), session_id=str(session.pk))
    session.refresh_jti = refresh[api_settings.JTI_CLAIM]
    session.expires_at = datetime_from_epoch(refresh["exp"])
    session.save(force_insert=True)
    new_device = _device_record(user=user, fingerprint=fingerprint, client=client)
    _sessions_cap(user=user)
    # Safe before commit: nobody knows this random id unless the transaction commits and returns it.
    session_cache.active_add(str(session.pk), user_id=str(user.pk))
    return session, _issued(refresh, session_id=str(session.pk)), new_device


def _sessions_cap(*, user: User) -> None:
    live = Session.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=timezone.now())
    excess = list(live.order_by("-last_used_at", "-created_at").values_list("id", flat=True)[MAX_ACTIVE_SESSIONS:])
    if excess:
        sessions_revoke(user_id=user.pk, session_ids=excess, reason="session_limit")


def _device_record(*, user: User, fingerprint: str, client: ClientInfo) -> bool:
    now = timezone.now()
    seen = {"last_seen_at": now, "last_ip_address": client.ip_address}
    devices = KnownDevice.objects.filter(user=user, fingerprint=fingerprint)
    # Most sign-ins come from a known device: one UPDATE, and only an unknown device costs more.
    if devices.update(sign_ins=F("sign_ins") + 1, **seen):
        return False
    known_before = KnownDevice.objects.filter(user=user).exists()
    _, created = KnownDevice.objects.get_or_create(
        user=user,
        fingerprint=fingerprint,
        defaults={"user_agent": client.user_agent, "first_seen_at": now, "sign_ins": 1, **seen},
    )
    if not created:  # a concurrent first sign-in from the same device created it in between
        devices.update(sign_ins=F("sign_ins") + 1, **seen)
    return created and known_before


def _refresh_token_new(*, user_id: str, session_id: str) -> SessionRefreshToken:
    refresh = SessionRefreshToken()
    refresh[api_settings.USER_ID_CLAIM] = user_id
    refresh[SESSION_CLAIM] = session_id
    return refresh


def _issued(refresh: SessionRefreshToken, *, session_id: str) -> IssuedTokens:
    return IssuedTokens(
        access_token=str(refresh.access_token),
        refresh_token=str(refresh),
        session_id=session_id,
        expires_in=int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    )


def session_refresh(*, refresh_token: str | SessionRefreshToken) -> IssuedTokens:
    """Exchange the session's current refresh token for a new pair; the old one dies in the same commit.

    The exchange is claimed with a conditional UPDATE on the session's current jti (and an active
    user), so of N simultaneous requests with one token exactly one wins. A token that is not the
    current one of a live session was rotated before: that is reuse, and every session of the user
    is revoked. Takes the token already decoded when the caller has it (the view does, for its limit).
    """
    token = (
        refresh_token if isinstance(refresh_token, SessionRefreshToken) else refresh_token_decode(token=refresh_token)
    )
    user_id, session_id, jti = token[api_settings.USER_ID_CLAIM], token[SESSION_CLAIM], token[api_settings.JTI_CLAIM]
    refresh = _refresh_token_new(user_id=user_id, session_id=session_id)
    now = timezone.now()
    # One statement, so atomic by itself. The user check rides in the claim (no separate read); only a
    # failed claim asks which it was.
    claimed = Session.objects.filter(
        Exists(User.objects.filter(pk=OuterRef("user_id"), is_active=True)),
        pk=session_id,
        user_id=user_id,
        refresh_jti=jti,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).update(
        refresh_jti=refresh[api_settings.JTI_CLAIM],
        last_used_at=now,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    if claimed:
        session_cache.active_add(session_id, user_id=user_id)
        _count("refresh", "success")
        return _issued(refresh, session_id=session_id)
    if not User.objects.filter(pk=user_id, is_active=True).exists():
        _count("refresh", "failure")
        raise InvalidToken()
    session = Session.objects.filter(pk=session_id, user_id=user_id).first()
    if session is None or not session.is_active:
        _count("refresh", "failure")
        raise InvalidToken("This session has ended. Sign in again.", code="session_revoked")
    _count("refresh", "reuse")
    logger.warning("refresh token reuse on session %s: revoking every session of user %s", session_id, user_id)
    sessions_revoke(user_id=user_id, reason="refresh_token_reuse")
    raise TokenReused()


def sessions_revoke(
    *, user_id, reason: str, session_ids: list | None = None, keep_session_id: str | None = None
) -> list[str]:
    """End the user's live sessions (all, or those listed, except one); their tokens die on the next request.

    The one way any session ends (API, admin, theft detection, password change). Returns the ids revoked
    now, empty when there was nothing to revoke: it never raises for that (see `user_session_revoke`).
    After the commit the cache learns it and `sessions_revoked` is sent.
    """
    with transaction.atomic():
        rows = Session.objects.select_for_update().filter(user_id=user_id, revoked_at__isnull=True)
        if session_ids is not None:
            rows = rows.filter(pk__in=session_ids)
        if keep_session_id is not None:
            rows = rows.exclude(pk=keep_session_id)
        ids = [str(sid) for sid in rows.values_list("id", flat=True)]
        if not ids:
            return []
        Session.objects.filter(pk__in=ids).update(revoked_at=timezone.now(), revoke_reason=reason[:32])
        announce = functools.partial(_announce_revoked, user_id=str(user_id), session_ids=ids, reason=reason)
        transaction.on_commit(announce)
    return ids


def user_deleting(sender, instance: User, **kwargs) -> None:
    """pre_delete of a User: end their sessions first. The cascade that follows deletes the rows without
    telling the cache or the open sockets, and authentication trusts a live session to vouch for its user."""
    sessions_revoke(user_id=instance.pk, reason="user_deleted")


def user_session_revoke(*, user: User, session_id, reason: str = "session_deleted") -> None:
    """The user ends one of their own live sessions (`DELETE /user/sessions/{id}`); another user's, or an
    ended, session raises NotFound. Built on `sessions_revoke`, which revokes silently and in bulk."""
    from coinlink.errors import NotFound

    if not sessions_revoke(user_id=user.pk, session_ids=[session_id], reason=reason):
        raise NotFound("Session not found.")


def user_logout(*, user: User, session_id: str, refresh_token: str) -> None:
    """End the current session, and the refresh token's session if it is another of this user's."""
    ids = [session_id]
    try:
        token = refresh_token_decode(token=refresh_token)
    except InvalidToken:
        token = None  # logging out must work even with a stale refresh token in hand
    if token is not None and token[api_settings.USER_ID_CLAIM] == str(user.pk):
        ids.append(token[SESSION_CLAIM])
    sessions_revoke(user_id=user.pk, session_ids=ids, reason="logout")
    _count("logout", "success")


def user_logout_all(*, user: User) -> None:
    sessions_revoke(user_id=user.pk, reason="logout_all")
    _count("logout_all", "success")


def _announce_revoked(*, user_id: str, session_ids: list[str], reason: str) -> None:
    session_cache.revoked_set(session_ids)
    _send(signals.sessions_revoked, user_id=user_id, session_ids=session_ids, reason=reason)


def _announce_sign_in(*, user: User, session: Session, new_device: bool, client: ClientInfo) -> None:
    _send(
        signals.user_signed_in,
        user=user,
        session=session,
        new_device=new_device,
        ip_address=client.ip_address or "",
        user_agent=client.user_agent,
    )


def _send(signal, **kwargs) -> None:
    """A listener's failure (a socket push, a notification) must not undo a committed auth change."""
    for receiver, result in signal.send_robust(sender=User, **kwargs):
        if isinstance(result, Exception):
            logger.error("listener %r failed: %r", receiver, result, exc_info=result)


# --- password, profile, preferences ------------------------------------------------------------


def user_password_change(*, user: User, session_id: str, old_password: str, new_password: str) -> None:
    """Set a new password and end every other session; the current one stays signed in."""
    if len(old_password) > PASSWORD_MAX_LENGTH or not user.check_password(old_password):
        _count("password_change", "failure")
        raise ValidationFailed({"old_password": ["Your current password is incorrect."]})
    if new_password == old_password:
        raise ValidationFailed({"new_password": ["The new password must differ from the current one."]})
    _password_validate(new_password, user=user, field="new_password")
    user_password_store(user=user, password=new_password, keep_session_id=session_id)
    _count("password_change", "success")


def user_password_store(
    *, user: User, password: str, keep_session_id: str | None = None, also: tuple[str, ...] = ()
) -> None:
    """Save a new (validated) password and the fields in `also`; the sessions end (but `keep_session_id`)
    and the user hears of it. Does the change hook's work itself, as it must know which session to keep."""
    user.set_password(password)
    user._password = None  # type: ignore[attr-defined]  # Django's marker (not in the stubs): as its own hash upgrade does, no change hook for this save
    with transaction.atomic():
        user.save(update_fields=["password", *also])
        user_password_changed(user=user, keep_session_id=keep_session_id, announce=True)


def user_password_changed(*, user: User, keep_session_id: str | None = None, announce: bool | None = None) -> None:
    """A new password is stored: pending reset links die and the sessions end (all, or all but one).

    After the commit the user hears of it when `announce`; left None (the change hook: the admin,
    `changepassword`, a shell), when the account was in use: signed in before, or sessions ended now.
    """
    onetime.tokens_void(user_id=user.pk, purpose=onetime.Purpose.PASSWORD_RESET)
    revoked = sessions_revoke(user_id=user.pk, reason="password_changed", keep_session_id=keep_session_id)
    if announce or (announce is None and (revoked or user.last_login is not None)):
        transaction.on_commit(functools.partial(password_changed_announce, user=user), robust=True)


def password_changed_announce(*, user: User) -> None:
    """After the commit: tell the user in the app (a listener) and by mail (a task), whatever the address's state."""
    from accounts.tasks import password_changed_mail

    _send(signals.password_changed, user=user)
    task_enqueue(password_changed_mail, user_id=str(user.pk))


def user_profile_update(*, user: User, **names: str) -> User:
    """Only the names are writable; the email is the login and changes through support."""
    fields = [name for name in ("first_name", "last_name") if name in names]
    for name in fields:
        setattr(user, name, names[name])
    if fields:
        user.save(update_fields=fields)
    return user


PREFERENCE_FIELDS: tuple[str, ...] = (
    "theme",
    "language",
    "currency",
    "timezone",
    "watchlist",
    "sound_enabled",
)


def preferences_update(*, user: User, **values) -> Preferences:
    """Store validated preference values (a PUT sends them all, a PATCH some); a watchlist names only
    active catalogue assets."""
    if values.get("watchlist"):
        _watchlist_check(values["watchlist"])
    with transaction.atomic():
        preferences, _ = Preferences.objects.get_or_create(user=user)
        fields = [name for name in PREFERENCE_FIELDS if name in values]
        for name in fields:
            setattr(preferences, name, values[name])
        if fields:
            preferences.save(update_fields=[*fields, "updated_at"])
    return preferences


def _watchlist_check(symbols: list[str]) -> None:
    known = symbols_known(symbols=symbols)
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise ValidationFailed({"watchlist": [f"Unknown symbols: {', '.join(unknown[:10])}."]})


# --- housekeeping ------------------------------------------------------------------------------


def tokens_purge(*, batch: int = 5000) -> dict[str, int]:
    """Delete sessions ended more than SESSION_HISTORY_DAYS ago, and expired rows of simplejwt's
    `token_blacklist` tables that earlier releases wrote (nothing writes them now); idempotent."""
    now = timezone.now()
    cutoff = now - timedelta(days=SESSION_HISTORY_DAYS)
    ended = Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff)
    return {
        "sessions": _delete_in_batches(Session.objects.filter(ended), batch),
        "tokens": _delete_in_batches(OutstandingToken.objects.filter(expires_at__lt=now), batch),
        "account_tokens": onetime.tokens_purge(now=now),
    }


def _delete_in_batches(queryset, batch: int) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        queryset.model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
