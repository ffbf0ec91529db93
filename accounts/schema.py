"""OpenAPI description of SessionJWTAuthentication (drf-spectacular loads it via AccountsConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SessionJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.SessionJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The access_token from signup, login or refresh. Refused at once after its session ends.",
        }
