"""Building the neutral chat structure (see the package docstring for its shape)."""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.tasks.prompt import PLACEHOLDER_RE

MEDIA_KINDS = ("image", "audio", "video")
# Keys of the media dict in lm-eval requests (the third argument) -> media kind.
REQUEST_KEYS = {"visual": "image", "image": "image", "audio": "audio", "video": "video"}


class MessageError(ValueError):
    """A request's messages cannot be built or parsed; names the task and doc when known."""

    def __init__(self, detail: str, task: str | None = None, doc: str | None = None) -> None:
        self.detail = detail
        self.task = task
        self.doc = doc
        where = ", ".join(
            f"{label} {value}" for label, value in (("task", task), ("doc", doc)) if value
        )
        super().__init__(f"{where}: {detail}" if where else detail)


def decode_data_url(url: str) -> tuple[str | None, bytes]:
    """``(declared MIME or None, payload bytes)`` of a base64 ``data:`` URL.

    Raises:
        MessageError: not a ``data:`` URL, not base64, or the payload is not strict base64.
    """
    if not isinstance(url, str) or not url.startswith("data:"):
        raise MessageError(f"expected a data: URL, got {str(url)[:40]!r}")
    header, sep, payload = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise MessageError("only base64 data: URLs are supported (data:<mime>;base64,...)")
    mime = header.removesuffix(";base64").split(";")[0] or None
    try:
        return mime, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MessageError(f"the data: URL payload is not valid base64 ({exc})") from None


def coerce_media(item: Any, kind: str, where: str | None = None) -> MediaRef:
    """One request media item, in any form our producers emit, as a MediaRef of ``kind``.

    Accepted: a MediaRef; raw bytes (``LOAD_BYTES``); a PIL image (``LOAD_OBJECT``, encoded
    to PNG because no source bytes exist); an audio dict ``{"array", "sampling_rate"}``
    (``LOAD_OBJECT``, encoded to float WAV); ``{"url": "data:..."}`` (``LOAD_BASE64``);
    ``{"type": kind, kind: path}`` (``LOAD_FILES``); a data URL or a file path string.

    Raises:
        MessageError: for any other form, naming its type.
    """
    if isinstance(item, MediaRef):
        return item
    if isinstance(item, (bytes, bytearray)):
        return MediaRef.from_bytes(kind, bytes(item), where=where)
    if isinstance(item, Mapping):
        if "url" in item:
            return coerce_media(item["url"], kind, where)
        if kind in item and isinstance(item[kind], (str, Path)):
            return coerce_media(item[kind], kind, where)
        if "array" in item and "sampling_rate" in item:
            from lm_eval_patches.media.audio import encode_wav

            wav = encode_wav(item["array"], int(item["sampling_rate"]))
            return MediaRef.from_bytes(kind, wav, item.get("path"), where)
    if isinstance(item, str):
        if item.startswith("data:"):
            _, data = decode_data_url(item)
            return MediaRef.from_bytes(kind, data, where=where)
        if Path(item).is_file():
            return MediaRef.from_file(kind, item, where)
        raise MessageError(f"{kind} {item[:60]!r} is neither a data: URL nor an existing file")
    if isinstance(item, Path):
        return MediaRef.from_file(kind, item, where)
    if type(item).__module__.startswith("PIL."):
        from lm_eval_patches.media.image import encode_png

        return MediaRef.from_bytes(kind, encode_png(item.convert("RGB")), where=where)
    raise MessageError(f"cannot use a {kind} given as {type(item).__name__}")


def _queues(media: Sequence[Any] | Mapping[str, Sequence[Any]] | None) -> dict[str, list]:
    """Per-kind queues of MediaRefs, in request order."""
    queues: dict[str, list] = {kind: [] for kind in MEDIA_KINDS}
    if not media:
        return queues
    if isinstance(media, Mapping) and not isinstance(media, MediaRef):
        for key, items in media.items():
            kind = REQUEST_KEYS.get(key)
            if kind is None:
                raise MessageError(f"unknown media key {key!r} in the request")
            queues[kind].extend(coerce_media(item, kind) for item in items or [])
        return queues
    for item in media:
        if not isinstance(item, MediaRef):
            raise MessageError(
                f"a media list must hold MediaRefs (got {type(item).__name__}); pass a "
                '{"visual"|"audio"|"video": [...]} mapping for other forms'
            )
        queues[item.kind].append(item)
    return queues


def _split_text(text: str, queues: dict[str, list], used: dict[str, int]) -> list[dict]:
    parts: list[dict] = []
    position = 0
    for match in PLACEHOLDER_RE.finditer(text):
        kind = match.group(1)
        if text[position : match.start()]:
            parts.append({"type": "text", "text": text[position : match.start()]})
        if used[kind] >= len(queues[kind]):
            raise MessageError(
                f"the prompt has more <{kind}> placeholders than the request has {kind} media "
                f"({len(queues[kind])})"
            )
        parts.append({"type": kind, kind: queues[kind][used[kind]]})
        used[kind] += 1
        position = match.end()
    if text[position:]:
        parts.append({"type": "text", "text": text[position:]})
    return parts


def build_messages(
    prompt: str | Sequence[Mapping[str, Any]],
    media: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
    *,
    task: str | None = None,
    doc: str | None = None,
) -> list[dict]:
    """Chat messages with each medium at its placeholder.

    Args:
        prompt: the request's text (one user message) or lm-eval's chat history, a list of
            ``{"role", "content"}`` whose content is a string or already a list of parts
            (text parts are split at placeholders; media parts are kept where they are).
        media: the request's media in order (few-shot docs first): MediaRefs, or lm-eval's
            media dict ``{"visual"|"audio"|"video": [...]}`` in any form :func:`coerce_media`
            takes. Each placeholder takes the next unused medium of its kind.
        task, doc: named in errors.

    Returns:
        The neutral structure: ``[{"role", "content": [parts]}]``; messages left without any
        part are dropped.

    Raises:
        MessageError: placeholder count differs from the media count for some kind, or a
            message or medium is malformed (naming ``task`` and ``doc``).
    """
    try:
        queues = _queues(media)
        history = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        used = dict.fromkeys(MEDIA_KINDS, 0)
        messages: list[dict] = []
        for message in history:
            if not isinstance(message, Mapping) or "role" not in message:
                raise MessageError(f"a chat message must be a dict with a role, got {message!r}")
            content = message.get("content")
            raw_parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            parts: list[dict] = []
            for part in raw_parts or []:
                if part.get("type") == "text":
                    parts.extend(_split_text(str(part.get("text", "")), queues, used))
                else:
                    parts.append(dict(part))
            if parts:
                messages.append({**message, "content": parts})
        left = {kind: len(queues[kind]) - used[kind] for kind in MEDIA_KINDS}
        if any(left.values()):
            detail = ", ".join(f"{n} {kind}" for kind, n in left.items() if n)
            raise MessageError(f"media without a placeholder in the prompt: {detail}")
    except MessageError as err:
        if task or doc:
            raise MessageError(err.detail, task or err.task, doc or err.doc) from None
        raise
    return messages


def media_parts(messages: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    """``(kind, medium)`` of every media part, in message order."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            continue
        for part in content or []:
            kind = part.get("type")
            if kind in MEDIA_KINDS:
                yield kind, part[kind]


def map_media(messages: Sequence[Mapping[str, Any]], fn: Callable[[str, Any], Any]) -> list[dict]:
    """A copy of ``messages`` with every medium replaced by ``fn(kind, medium)``.

    For consumers that want another form in the same places, e.g. HF chat templates:
    ``map_media(messages, lambda kind, ref: ref.as_pil() if kind == "image" else ref)``.
    """
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(dict(message))
            continue
        parts = []
        for part in content or []:
            kind = part.get("type")
            if kind in MEDIA_KINDS:
                parts.append({**part, kind: fn(kind, part[kind])})
            else:
                parts.append(copy.copy(part))
        out.append({**message, "content": parts})
    return out


class ChatHistory(list):
    """A request context that is a chat (pass mode): the neutral messages, media inside.

    lm-eval hashes a request's context as a string (``prompt_hash``); like upstream's
    ``JsonChatStr`` this list encodes to its JSON (MediaRefs are small JSON-safe dicts), so
    sample logging and request hashing work unchanged.
    """

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        import json

        return json.dumps(self, ensure_ascii=False, sort_keys=True).encode(encoding, errors)
