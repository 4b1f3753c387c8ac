"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Every failure the server reports, from a bad token to an adapter that raised, goes out in this
shape with a 4xx/5xx status and a one-line message; tracebacks stay in the server's log.
"""

from __future__ import annotations

from typing import Any

# OpenAI's error types per status (what its own API answers for these statuses).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


class APIError(Exception):
    """A request the server refuses or could not serve; rendered by :func:`error_body`.

    ``status`` is the HTTP status, ``param`` names the offending request field (e.g.
    ``messages[0].content[1].image_url.url``) and ``code`` is a short machine-readable reason.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The JSON body OpenAI's API sends with an error status."""
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(
                status, "invalid_request_error" if status < 500 else "server_error"
            ),
            "param": param,
            "code": code,
        }
    }
