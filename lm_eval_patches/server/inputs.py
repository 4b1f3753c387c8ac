"""OpenAI-shaped chat messages -> turns of text and lazy media, checked and decoded safely.

Media arrive as ``data:`` URLs (``image_url``, ``audio_url``, ``video_url`` as vLLM sends them;
``input_audio`` as OpenAI sends it). Their bytes become :class:`MediaRef` objects in memory (the
media layer sniffs the real MIME type and decodes on demand); ``http(s)`` URLs are fetched only
when the server was started with remote media allowed. Every refusal is an :class:`APIError`
(400) naming the request field at fault, e.g. ``messages[0].content[1].image_url.url``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.server.errors import APIError

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
# Content part type -> (media kind, key holding the URL object).
URL_PARTS = {
    "image_url": ("image", "image_url"),
    "audio_url": ("audio", "audio_url"),
    "video_url": ("video", "video_url"),
}


@dataclass
class MediaPolicy:
    """What media a request may carry: remote URLs (off by default), their size, image pixels."""

    allow_remote: bool = False
    max_remote_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int | None = None
    remote_timeout_s: float = 30.0


@dataclass
class ChatTurn:
    """One message: its role and its parts in order (``str`` for text, MediaRef for media)."""

    role: str
    parts: list[str | MediaRef] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text parts joined (media left out)."""
        return "".join(p for p in self.parts if isinstance(p, str))

    def media(self, kind: str | None = None) -> list[MediaRef]:
        """This turn's media, of one kind when ``kind`` is given, in order."""
        return [p for p in self.parts if isinstance(p, MediaRef) and kind in (None, p.kind)]


def all_media(turns: list[ChatTurn], kind: str | None = None) -> list[MediaRef]:
    """Every medium of the conversation in order, of one kind when ``kind`` is given."""
    return [ref for turn in turns for ref in turn.media(kind)]


def parse_messages(messages: Any, policy: MediaPolicy | None = None) -> list[ChatTurn]:
    """Turn the request's ``messages`` into :class:`ChatTurn` objects; raises APIError (400)."""
    policy = policy or MediaPolicy()
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list", param="messages")
    turns = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise APIError(400, f"{where} must be an object", param=where)
        role = ROLES.get(message.get("role"))
        if role is None:
            raise APIError(
                400,
                f"{where}.role must be one of {', '.join(ROLES)}, got {message.get('role')!r}",
                param=f"{where}.role",
            )
        turns.append(ChatTurn(role, _parts(message.get("content"), where, policy)))
    return turns


def _parts(content: Any, where: str, policy: MediaPolicy) -> list[str | MediaRef]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise APIError(400, f"{where}.content must be a string or a list of parts", param=where)
    parts: list[str | MediaRef] = []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise APIError(400, f"{here}.text must be a string", param=f"{here}.text")
            parts.append(text)
        elif kind in URL_PARTS:
            media_kind, key = URL_PARTS[kind]
            holder = part.get(key)
            url = holder.get("url") if isinstance(holder, dict) else holder
            if not isinstance(url, str):
                raise APIError(400, f"{here}.{key}.url must be a string", param=f"{here}.{key}")
            parts.append(_media_from_url(media_kind, url, f"{here}.{key}.url", policy))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            if not isinstance(data, str):
                raise APIError(
                    400, f"{here}.input_audio.data must be base64 text", param=f"{here}.input_audio"
                )
            parts.append(_media(_b64(data, f"{here}.input_audio.data"), "audio", here, policy))
        else:
            raise APIError(
                400,
                f"{here}.type must be one of text, image_url, audio_url, video_url, input_audio; "
                f"got {kind!r}",
                param=f"{here}.type",
            )
    return parts


def _media_from_url(kind: str, url: str, where: str, policy: MediaPolicy) -> MediaRef:
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise APIError(
                400, f"{where}: expected data:<mime>;base64,<payload>", param=where, code="bad_url"
            )
        return _media(_b64(payload, where), kind, where, policy)
    if url.startswith(("http://", "https://")):
        if not policy.allow_remote:
            raise APIError(
                400,
                f"{where}: remote media URLs are disabled on this server; send the file as a "
                "data: URL (or start the server with --allow-remote-media)",
                param=where,
                code="remote_url_disabled",
            )
        return _media(_fetch(url, where, policy), kind, where, policy)
    scheme = url.split(":", 1)[0] if ":" in url else url[:16]
    raise APIError(
        400, f"{where}: unsupported URL scheme {scheme!r} (use data:)", param=where, code="bad_url"
    )


def _b64(payload: str, where: str) -> bytes:
    try:
        data = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise APIError(
            400, f"{where}: invalid base64 payload ({exc})", param=where, code="invalid_base64"
        ) from exc
    if not data:
        raise APIError(400, f"{where}: the media payload is empty", param=where)
    return data


def _media(data: bytes, kind: str, where: str, policy: MediaPolicy) -> MediaRef:
    ref = MediaRef.from_bytes(kind, data, where=f"request field {where}")
    mime = ref.mime or ""
    if not mime.startswith(f"{kind}/") and not (kind == "audio" and mime.startswith("video/")):
        raise APIError(
            400,
            f"{where}: the bytes are not a recognised {kind} file (sniffed: {mime or 'unknown'})",
            param=where,
            code="invalid_media",
        )
    if kind == "image":
        _check_pixels(data, where, policy.max_image_pixels)
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

    try:
        with httpx.stream("GET", url, timeout=policy.remote_timeout_s, follow_redirects=True) as r:
            r.raise_for_status()
            chunks, size = [], 0
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
    return b"".join(chunks)
