"""Factories for test data; each app's tests add theirs here or beside them."""

from __future__ import annotations

import factory
from rest_framework.test import APIClient

from accounts.models import User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "correct horse battery staple")
        if create:
            self.save(update_fields=["password"])


def tokens_for(user, *, user_agent: str = "pytest", ip_address: str = "127.0.0.1") -> dict:
    """A real session for `user` (as a login would start it): access_token, refresh_token, session_id."""
    from accounts.services import ClientInfo, session_start

    tokens = session_start(user=user, client=ClientInfo(ip_address=ip_address, user_agent=user_agent))
    return {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "session_id": tokens.session_id}


def api_client_for(user) -> APIClient:
    """An APIClient carrying the Bearer access token of a new real session of `user`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
    return client
