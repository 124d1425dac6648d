"""Deliberate API errors: one type per failure a caller can act on, rendered as the contract's body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the client caused or can act on. `code` and `reason` reach the client as they are."""

    status = 400
    code = "InvalidRequestParameter"

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.extra = extra or []

    def body(self) -> dict[str, Any]:
        errors = [{"code": self.code, "reason": self.reason}]
        errors += [{"code": code, "reason": reason} for code, reason in self.extra]
        return {"success": False, "statusCode": self.status, "errors": errors}


class InvalidRequest(ApiError):
    status = 400
    code = "InvalidRequestParameter"


class MalformedJson(ApiError):
    status = 400
    code = "MalformedJson"


class Unauthorized(ApiError):
    status = 401
    code = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "Forbidden"


class NotFound(ApiError):
    status = 404
    code = "NotFound"


class MethodNotAllowed(ApiError):
    status = 405
    code = "MethodNotAllowed"


class Conflict(ApiError):
    status = 409
    code = "Conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "PayloadTooLarge"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "UnsupportedMediaType"


class TooManyRequests(ApiError):
    status = 429
    code = "TooManyRequests"


class ServiceUnavailable(ApiError):
    status = 503
    code = "ServiceUnavailable"
