"""The inverse of rendering: OpenAI-shaped chat messages back into the neutral structure.

Used by the model server on incoming requests. Both dialects are understood:
``image_url``/``audio_url``/``video_url`` parts (the URL as a string or ``{"url": ...}``),
``input_audio`` ``{data, format}``, and Hugging Face's own ``{"type": "image", "image": ...}``
shape. Media arrive as ``data:`` URLs and become in-memory MediaRefs (MIME sniffed from the
bytes, not taken from the URL); other URLs are refused unless ``allow_remote`` is set, in which
case the URL string is kept in place of the MediaRef for the caller to fetch.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.messages.build import MEDIA_KINDS, MessageError, decode_data_url

__all__ = ["decode_data_url", "parse_openai_messages"]

_URL_PART_KINDS = {"image_url": "image", "audio_url": "audio", "video_url": "video"}


def _medium_from_url(kind: str, url: Any, allow_remote: bool, where: str) -> MediaRef | str:
    if isinstance(url, Mapping):
        url = url.get("url")
    if not isinstance(url, str) or not url:
        raise MessageError(f"{where}: the {kind} part has no URL")
    if url.startswith("data:"):
        try:
            _, data = decode_data_url(url)
        except MessageError as err:
            raise MessageError(f"{where}: {err.detail}") from None
        if not data:
            raise MessageError(f"{where}: the {kind} data: URL is empty")
        return MediaRef.from_bytes(kind, data, where=where)
    if allow_remote and url.startswith(("http://", "https://")):
        return url
    raise MessageError(
        f"{where}: only data: URLs are accepted for {kind} (remote fetching is disabled)"
    )


def _part(part: Any, allow_remote: bool, where: str) -> dict:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
        raise MessageError(f"{where}: a content part must be an object with a type")
    ptype = part["type"]
    if ptype == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise MessageError(f"{where}: a text part needs a string 'text'")
        return {"type": "text", "text": text}
    if ptype in _URL_PART_KINDS:
        kind = _URL_PART_KINDS[ptype]
        return {"type": kind, kind: _medium_from_url(kind, part.get(ptype), allow_remote, where)}
    if ptype == "input_audio":
        body = part.get("input_audio") or {}
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MessageError(f"{where}: input_audio data is not valid base64 ({exc})") from None
        if not data:
            raise MessageError(f"{where}: input_audio has no data")
        return {"type": "audio", "audio": MediaRef.from_bytes("audio", data, where=where)}
    if ptype in MEDIA_KINDS:
        medium = part.get(ptype, part.get("url"))
        if isinstance(medium, MediaRef):
            return {"type": ptype, ptype: medium}
        return {"type": ptype, ptype: _medium_from_url(ptype, medium, allow_remote, where)}
    raise MessageError(f"{where}: unsupported content part type {ptype!r}")


def parse_openai_messages(
    messages: Sequence[Mapping[str, Any]], *, allow_remote: bool = False
) -> list[dict]:
    """The neutral structure for OpenAI-shaped ``messages`` (either dialect).

    Returns:
        ``[{"role", "content": [parts]}]`` with MediaRefs (or kept remote URL strings).

    Raises:
        MessageError: malformed messages or parts, bad base64, a non-data URL when
            ``allow_remote`` is off; the message names the message and part index.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise MessageError("messages must be a list of chat messages")
    out = []
    for m_index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise MessageError(f"messages[{m_index}] must be an object with a string role")
        content = message.get("content")
        if content is None:
            parts: list[dict] = []
        elif isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, Sequence):
            parts = [
                _part(part, allow_remote, f"messages[{m_index}].content[{p_index}]")
                for p_index, part in enumerate(content)
            ]
        else:
            raise MessageError(f"messages[{m_index}].content must be a string or a list of parts")
        out.append({"role": message["role"], "content": parts})
    return out
