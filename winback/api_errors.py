"""The API's one error shape, under every status::

{"error": {"code": "invalid", "message": "…", "fields": {"name": ["…"]}}}
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers
from rest_framework.views import exception_handler as drf_exception_handler


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            if isinstance(value, dict | list):
                for k, v in _flatten(value, f"{prefix}.{i}" if prefix else str(i)).items():
                    out.setdefault(k, []).extend(v)
            else:
                out.setdefault(prefix or "non_field_errors", []).append(str(value))
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def django_validation_error_to_drf(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError({field: list(messages) for field, messages in exc.message_dict.items()})
    return exceptions.ValidationError({"non_field_errors": exc.messages})


def exception_handler(exc, context):
    """Every error in one shape, with the right status."""
    if isinstance(exc, DjangoValidationError):
        exc = django_validation_error_to_drf(exc)
    elif isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    fields: dict[str, list[str]] = {}
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        general = fields.pop("non_field_errors", [])
        message = " ".join(general) if general else "Some fields are not valid."
        code = getattr(exc, "error_code", "invalid")
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        message = (
            str(detail)
            if not isinstance(detail, dict | list)
            else "; ".join(f"{k}: {' '.join(v)}" for k, v in _flatten(detail).items())
        )
        code = getattr(exc, "error_code", None) or getattr(detail, "code", None) or code
    response.data = {"error": {"code": str(code), "message": message, "fields": fields}}
    return response


@csrf_exempt
def not_found(request, *args, **kwargs) -> HttpResponse:
    body = {"error": {"code": "not_found", "message": "No such endpoint.", "fields": {}}}
    return JsonResponse(body, status=404)


class ApiError(exceptions.APIException):
    """An error with its own code and status: ``raise ApiError(409, "already_redeemed", "…")``."""

    def __init__(self, status_code: int, code: str, message: str):
        self.status_code = status_code
        self.error_code = code
        super().__init__(detail=message, code=code)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. `invalid`, `not_found`.")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field errors by field name (empty unless the request body was invalid).",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()
