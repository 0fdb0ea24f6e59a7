"""The OpenAPI schema (drf-spectacular): the one error shape under every status an endpoint can
answer with, and only the credentials each kind of endpoint is for."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object

from winback.api_auth import ApiKeyAuthentication, MemberTokenAuthentication
from winback.api_errors import ErrorSerializer


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = MemberTokenAuthentication
    name = "memberToken"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "posApiKey"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


ERROR_STATUSES = {
    "400": "The request is not valid (see `error.fields`).",
    "401": "Not authenticated, or the credentials expired or were revoked.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such object in this business (another business's object looks the same).",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "415": "Unsupported media type.",
    "429": "Too many requests: wait `Retry-After` seconds.",
}


class WinbackAutoSchema(AutoSchema):
    """Documents the one error shape under every status an endpoint can answer with, and only
    the credentials each kind of endpoint is for."""

    def get_auth(self):
        auth = super().get_auth()
        documented = getattr(self.view, "documented_auth", None)
        if documented is None:
            return auth
        return [entry for entry in auth if set(entry) & set(documented)]

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        extra = getattr(self.view, "error_statuses", {})
        for code, description in {**ERROR_STATUSES, **extra}.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = description
        return responses
