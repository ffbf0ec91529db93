"""Hooks `accounts` announces; coinlink.wiring decides who listens.

- `user_signed_in(user, session, new_device, ip_address, user_agent)`: after a login commits.
- `sessions_revoked(user_id, session_ids, reason)`: after sessions end (logout, logout-all,
  password change, theft detection, a DELETE); sockets of those sessions must close.
- `password_changed(user)`: after a password reset or change through the API commits; the user
  should hear about it in the app (the mail is sent by `accounts` itself).
"""

from django.dispatch import Signal

user_signed_in = Signal()
sessions_revoked = Signal()
password_changed = Signal()
