"""A request's ``messages`` -> the project's neutral chat structure, checked and decoded safely.

Parsing is the message builder's (:func:`lm_eval_patches.messages.parse_openai_messages`: both
dialects, ``data:`` URLs decoded in memory into MediaRefs whose MIME type is sniffed from the
bytes). This module adds the server's own rules on top: known roles only, each medium really of
its kind, image headers readable (the pixels are decoded later by the adapter, reduced to the
media layer's pixel budget; sources too large to reduce are refused there with a 400), and
``http(s)`` media fetched, with a size cap, only when the server allows remote media; text
parts never hold media slots (a literal ``<image>`` in them is escaped as in task prompts). Every
refusal is an :class:`APIError` (400) naming the request field at fault, e.g.
``messages[0].content[1]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.messages import MEDIA_KINDS, MessageError, media_parts, parse_openai_messages
from lm_eval_patches.server.errors import APIError
from lm_eval_patches.tasks.prompt import escape_media_slots

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_FIELD = re.compile(r"^(messages\[\d+\](?:\.content\[\d+\])?)")


@dataclass
class MediaPolicy:
    """What media a request may carry: remote URLs (off by default) and their size."""

    allow_remote: bool = False
    max_remote_bytes: int = 32 * 1024 * 1024
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
        raise APIError(400, str(exc), param=request_field(str(exc)) or "messages") from exc
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
            elif kind == "text":
                # Only content parts are media: a literal "<image>" left in a client's text
                # (stock lm-eval leaves one) must not become an extra slot in the template.
                part = {**part, "text": escape_media_slots(str(part.get("text", "")))}
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
        _check_image_header(ref, where)
    return ref


def _check_image_header(ref: MediaRef, where: str) -> None:
    """Read the image header now (not the pixels), so an unreadable image is refused at once.
    Large pictures are decoded reduced to the media layer's pixel budget by the adapter."""
    from lm_eval_patches.media.image import image_facts

    try:
        image_facts(ref.read_bytes())
    except MediaError as exc:
        raise APIError(400, f"{where}: {exc}", param=where, code="invalid_media") from exc


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


def request_field(text: str) -> str | None:
    """The request field (``messages[i]`` or ``messages[i].content[j]``) that ``text``, a
    message or a media location, starts with; None when it names none."""
    field = _FIELD.match(text)
    return field.group(1) if field else None


def media_of(messages: list[dict], kind: str) -> list[MediaRef]:
    """Every medium of ``kind`` in the conversation, in order."""
    return [medium for k, medium in media_parts(messages) if k == kind]
