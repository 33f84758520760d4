"""Telegram-shaped API errors raised by the emulated Bot API methods."""

from __future__ import annotations

from typing import Any

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description and optional parameters."""

    def __init__(
        self,
        status: int,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        if description is None:
            description = default_description(status, retry_after)
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters: dict[str, Any] = dict(parameters or {})
        if retry_after is not None:
            self.parameters["retry_after"] = retry_after

    def to_json(self) -> dict[str, Any]:
        """Render the error as Telegram's JSON answer."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def default_description(status: int, retry_after: int | None = None) -> str:
    """Return Telegram's usual description for an HTTP status."""
    if status == 429 and retry_after is not None:
        return f"Too Many Requests: retry after {retry_after}"
    return _DEFAULT_DESCRIPTIONS.get(status, "Error")


def bad_request(detail: str) -> ApiError:
    """Build a 400 error with Telegram's ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    """Build a 403 error with Telegram's ``Forbidden:`` prefix."""
    return ApiError(403, f"Forbidden: {detail}")
