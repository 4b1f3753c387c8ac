"""Guards in front of the app (one ASGI middleware): the bearer token on ``/v1`` routes, then
the request body size limit, both checked before any byte of the body is read or parsed."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from lm_eval_patches.server.errors import APIError, error_body


class GuardMiddleware:
    """401 without the right bearer token (``/v1`` routes, when a key is set); 413 (OpenAI's
    error shape) for bodies over the limit, by ``Content-Length`` when given, else by counting a
    chunked body as it arrives.

    ``settings`` returns ``(api_key, max_bytes)``; it is called per request, so settings read
    from the environment at start-up apply."""

    def __init__(self, app: Any, settings: Callable[[], tuple[str | None, int]]) -> None:
        self.app = app
        self.settings = settings
        self.max_bytes = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api_key, self.max_bytes = self.settings()
        headers = dict(scope.get("headers") or [])
        if scope["path"].startswith("/v1"):
            auth = headers.get(b"authorization", b"").decode("latin-1")
            try:
                check_bearer(auth, api_key)
            except APIError as exc:
                await _reply(send, 401, exc.message, exc.code, exc.headers)
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await _reply(send, 400, "invalid Content-Length header", "invalid_request")
                return
            if too_big:
                await _reply(send, 413, self._message(int(length)))
                return
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read up to the limit, then replay the body to the app.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await _reply(send, 413, self._message(size, at_least=True))
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _message(self, size: int, at_least: bool = False) -> str:
        return (
            f"request body of {'at least ' if at_least else ''}{size} bytes is over this server's "
            f"limit of {self.max_bytes} bytes (--max-body-bytes)"
        )


async def _reply(
    send: Any,
    status: int,
    message: str,
    code: str = "body_too_large",
    extra: dict[str, str] | None = None,
) -> None:
    body = json.dumps(error_body(status, message, code=code)).encode()
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def check_bearer(authorization: str | None, api_key: str | None) -> None:
    """Raise APIError 401 unless ``authorization`` is ``Bearer <api_key>`` (no key: open)."""
    if not api_key:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode(), api_key.encode()
    ):
        raise APIError(
            401,
            "missing or wrong API key: send 'Authorization: Bearer <key>'",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
