"""Hooks `accounts` announces; coinlink.wiring decides who listens.

- `user_signed_in(user, session, new_device, ip_address, user_agent)`: after a login commits.
- `sessions_revoked(user_id, session_ids, reason)`: after sessions end (logout, logout-all,
  password change, theft detection, a DELETE); sockets of those sessions must close.
"""

from django.dispatch import Signal

user_signed_in = Signal()
sessions_revoked = Signal()
