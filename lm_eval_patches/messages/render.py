"""Rendering the neutral structure as OpenAI-shaped chat messages, per media dialect.

Dialects (the part shapes each kind of server accepts):

============  =====================================  ===========================================
kind          ``vllm`` (vLLM, SGLang, our server)     ``openai`` (OpenAI's API, most closed APIs)
============  =====================================  ===========================================
image         ``image_url`` {url: data URL}          ``image_url`` {url: data URL}
audio         ``audio_url`` {url: data URL}          ``input_audio`` {data: base64, format}
video         ``video_url`` {url: data URL}, or      N frames as ``image_url`` parts (JPEG)
              N frames when ``video_frames`` is set
============  =====================================  ===========================================

Data URLs carry the media's real MIME type and, for images, its original bytes (no PNG
re-encoding; MediaRef's byte forms normalise only images that need it). An image is re-encoded
only when a resize is asked for and changes its size (JPEG stays JPEG, anything else becomes
PNG). OpenAI's ``input_audio`` takes ``wav`` and ``mp3`` only; other audio is converted to WAV.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.messages.build import MEDIA_KINDS

DIALECTS = ("vllm", "openai")
DEFAULT_VIDEO_FRAMES = 8  # frames per video when a dialect has no video part
_INPUT_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3"}


@dataclass(frozen=True)
class RenderOptions:
    """How media become parts.

    Attributes:
        dialect: ``"vllm"`` or ``"openai"`` (table in the module docstring).
        image_width, image_height, image_max_side: the original project's resize rules
            (``media.image.target_size``); all None sends images untouched.
        video_frames: send each video as this many uniformly sampled frames instead of a
            ``video_url`` part; the ``openai`` dialect always sends frames (default 8).
        frame_quality: JPEG quality of video frames sent as images.
    """

    dialect: str = "vllm"
    image_width: int | None = None
    image_height: int | None = None
    image_max_side: int | None = None
    video_frames: int | None = None
    frame_quality: int = 90

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(f"media_dialect must be one of {', '.join(DIALECTS)}")
        from lm_eval_patches.media.image import check_resize_args

        check_resize_args(self.image_width, self.image_height, self.image_max_side)
        if self.video_frames is not None and self.video_frames < 1:
            raise ValueError("video_frames must be a positive integer")

    @property
    def video_mode(self) -> str:
        """``"native"`` (``video_url``) or ``"frames:N"``: recorded in the results."""
        frames = self.frames_per_video
        return f"frames:{frames}" if frames else "native"

    @property
    def frames_per_video(self) -> int | None:
        if self.video_frames:
            return self.video_frames
        return DEFAULT_VIDEO_FRAMES if self.dialect == "openai" else None

    @property
    def resizes(self) -> bool:
        return any(
            v is not None for v in (self.image_width, self.image_height, self.image_max_side)
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _url_part(kind: str, url: str) -> dict:
    key = f"{kind}_url"
    return {"type": key, key: {"url": url}}


def _image_url(ref: MediaRef, options: RenderOptions) -> str:
    if not options.resizes:
        return ref.as_data_url()
    from PIL import Image

    from lm_eval_patches.media.image import target_size

    with ref.located():
        data = ref.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as probe:  # reads the header only
                size = probe.size
        except Exception as exc:  # noqa: BLE001 - any PIL failure is a bad image
            raise ref.error(f"cannot read the image header: {exc}") from exc
    sizes = {
        "width": options.image_width,
        "height": options.image_height,
        "max_side": options.image_max_side,
    }
    if target_size(size, **sizes) == size:
        return ref.as_data_url()
    img = ref.as_pil(**sizes)
    buf = io.BytesIO()
    if ref.mime == "image/jpeg":
        img.save(buf, format="JPEG", quality=95)
        mime = "image/jpeg"
    else:
        img.save(buf, format="PNG")
        mime = "image/png"
    return f"data:{mime};base64,{_b64(buf.getvalue())}"


def _audio_part(ref: MediaRef, options: RenderOptions) -> dict:
    if options.dialect == "vllm":
        return _url_part("audio", ref.as_data_url())
    fmt = _INPUT_AUDIO_FORMATS.get(ref.mime or "")
    if fmt:
        data = ref.read_bytes()
    else:  # OpenAI takes wav and mp3 only
        from lm_eval_patches.media.audio import encode_wav

        samples, rate = ref.as_audio(target_rate=None, mono=False)
        data, fmt = encode_wav(samples, rate, subtype="PCM_16"), "wav"
    return {"type": "input_audio", "input_audio": {"data": _b64(data), "format": fmt}}


def _video_parts(ref: MediaRef, options: RenderOptions) -> list[dict]:
    frames = options.frames_per_video
    if not frames:
        return [_url_part("video", ref.as_data_url())]
    parts = []
    for frame in ref.as_frames(frames):
        buf = io.BytesIO()
        frame.convert("RGB").save(buf, format="JPEG", quality=options.frame_quality)
        parts.append(_url_part("image", f"data:image/jpeg;base64,{_b64(buf.getvalue())}"))
    return parts


def _media_parts(kind: str, medium: Any, options: RenderOptions) -> list[dict]:
    if isinstance(medium, str):  # a remote URL the parser was allowed to keep
        return [_url_part(kind, medium)]
    if kind == "image":
        return [_url_part("image", _image_url(medium, options))]
    if kind == "audio":
        return [_audio_part(medium, options)]
    return _video_parts(medium, options)


def render_messages(
    messages: Sequence[Mapping[str, Any]], options: RenderOptions | None = None
) -> list[dict]:
    """OpenAI-shaped ``messages`` (JSON-safe) for the neutral structure.

    A message whose parts are all text is sent with a plain string content (every server takes
    that for system and assistant turns); others get a list of parts in order.

    Raises:
        MediaError: a medium cannot be read, decoded (resize, frames, audio conversion).
    """
    options = options or RenderOptions()
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        parts: list[dict] = []
        for part in content or []:
            kind = part.get("type")
            if kind in MEDIA_KINDS:
                parts.extend(_media_parts(kind, part[kind], options))
            else:
                parts.append(dict(part))
        if all(p.get("type") == "text" for p in parts):
            out.append({"role": message["role"], "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": message["role"], "content": parts})
    return out
