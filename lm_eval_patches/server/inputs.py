"""A request's ``messages`` -> the project's neutral chat structure, checked and decoded safely.

Parsing is the message builder's (:func:`lm_eval_patches.messages.parse_openai_messages`: both
dialects, ``data:`` URLs decoded in memory into MediaRefs whose MIME type is sniffed from the
bytes). This module adds the server's own rules on top: known roles only, each medium really of
its kind, images within the pixel budget (checked from the header, before any decoding), and
``http(s)`` media fetched, with a size cap, only when the server allows remote media. Every
refusal is an :class:`APIError` (400) naming the request field at fault, e.g.
``messages[0].content[1]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.messages import MEDIA_KINDS, MessageError, media_parts, parse_openai_messages
from lm_eval_patches.server.errors import APIError

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_FIELD = re.compile(r"^(messages\[\d+\](?:\.content\[\d+\])?)")


@dataclass
class MediaPolicy:
    """What media a request may carry: remote URLs (off by default), their size, image pixels
    (``max_image_pixels`` None: Pillow's decompression-bomb limit, about 89 megapixels)."""

    allow_remote: bool = False
    max_remote_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int | None = None
    remote_timeout_s: float = 30.0


def parse_messages(messages: Any, policy: MediaPolicy | None = None) -> list[dict]:
    """The neutral structure (``[{"role", "content": [parts]}]``, media as MediaRefs) for the
    request's ``messages``; raises APIError (400) naming the field at fault."""
    policy = policy or MediaPolicy()
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list", param="messages")
    try:
        parsed = parse_openai_messages(messages, allow_remote=policy.allow_remote)
    except MessageError as exc:
        field = _FIELD.match(str(exc))
        raise APIError(400, str(exc), param=field.group(1) if field else "messages") from exc
    for i, message in enumerate(parsed):
        role = ROLES.get(message["role"])
        if role is None:
            raise APIError(
                400,
                f"messages[{i}].role must be one of {', '.join(ROLES)}, got {message['role']!r}",
                param=f"messages[{i}].role",
            )
        message["role"] = role
    return _checked_media(parsed, policy)


def _checked_media(messages: list[dict], policy: MediaPolicy) -> list[dict]:
    checked = []
    for i, message in enumerate(messages):
        parts = []
        for j, part in enumerate(message["content"]):
            kind = part.get("type")
            if kind in MEDIA_KINDS:
                where = f"messages[{i}].content[{j}]"
                medium = part[kind]
                if isinstance(medium, str):  # a remote URL, kept because remote media are on
                    medium = MediaRef.from_bytes(kind, _fetch(medium, where, policy), where=where)
                part = {"type": kind, kind: _check(medium, kind, where, policy)}
            parts.append(part)
        checked.append({"role": message["role"], "content": parts})
    return checked


def _check(ref: MediaRef, kind: str, where: str, policy: MediaPolicy) -> MediaRef:
    mime = ref.mime or ""
    # An audio part may hold a video container (the audio track is what counts).
    if not mime.startswith(f"{kind}/") and not (kind == "audio" and mime.startswith("video/")):
        raise APIError(
            400,
            f"{where}: the bytes are not a recognised {kind} file (sniffed: {mime or 'unknown'})",
            param=where,
            code="invalid_media",
        )
    if kind == "image":
        _check_pixels(ref.read_bytes(), where, policy.max_image_pixels)
    return ref


def _check_pixels(data: bytes, where: str, budget: int | None) -> None:
    """Refuse images over the pixel budget from their header, before any decoding."""
    import io

    from PIL import Image, UnidentifiedImageError

    limit = budget if budget is not None else Image.MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            width, height = img.size
    except Image.DecompressionBombError as exc:
        raise APIError(
            400, f"{where}: image too large ({exc})", param=where, code="image_too_large"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise APIError(
            400, f"{where}: cannot read the image ({exc})", param=where, code="invalid_media"
        ) from exc
    if limit and width * height > limit:
        raise APIError(
            400,
            f"{where}: image of {width}x{height} = {width * height} pixels is over this "
            f"server's budget of {limit} pixels; downscale it first",
            param=where,
            code="image_too_large",
        )


def _fetch(url: str, where: str, policy: MediaPolicy) -> bytes:
    """GET a remote medium with a size cap and a timeout (only when remote media are enabled)."""
    import httpx

    chunks, size = [], 0
    try:
        with httpx.stream("GET", url, timeout=policy.remote_timeout_s, follow_redirects=True) as r:
            r.raise_for_status()
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > policy.max_remote_bytes:
                    raise APIError(
                        400,
                        f"{where}: remote file is over {policy.max_remote_bytes} bytes",
                        param=where,
                        code="media_too_large",
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise APIError(
            400, f"{where}: cannot fetch {url}: {exc}", param=where, code="fetch_failed"
        ) from exc
    if not chunks:
        raise APIError(400, f"{where}: {url} is empty", param=where, code="fetch_failed")
    return b"".join(chunks)


def media_of(messages: list[dict], kind: str) -> list[MediaRef]:
    """Every medium of ``kind`` in the conversation, in order."""
    return [medium for k, medium in media_parts(messages) if k == kind]
