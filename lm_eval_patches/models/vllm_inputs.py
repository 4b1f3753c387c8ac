"""What ``vllm-vlm`` hands to vLLM, built from the neutral chat messages (no vllm import here).

Two shapes, one per mode of the backend:

- plain mode (``LLM.generate``): a prompt string in which every medium is the model's own
  placeholder text (rendered by the model's processor chat template, or spliced into a plain
  prompt) plus ``multi_modal_data`` = ``{"image": [PIL.Image], "audio": [(float32 array,
  rate)], "video": [uint8 array (frames, height, width, 3)]}`` in placeholder order;
- chat mode (``LLM.chat``): OpenAI-style messages from :func:`messages.render_messages` in the
  ``vllm`` dialect (``image_url`` / ``audio_url`` / ``video_url`` data URLs), images resized by
  the same rules as in plain mode.

Messages come from :func:`lm_eval_patches.messages.build_messages`, the one message builder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lm_eval_patches.errors import SettingsError
from lm_eval_patches.messages import (
    MEDIA_KINDS,
    RenderOptions,
    map_media,
    media_parts,
    render_messages,
)

# Generic placeholders, used when neither an argument nor the processor says better.
GENERIC_PLACEHOLDERS = {"image": "<image>", "audio": "<audio>", "video": "<video>"}
# Markers around one medium when its placeholder text is read off the chat template.
_LEFT, _RIGHT = "\u2063MERA-L\u2063", "\u2063MERA-R\u2063"


@dataclass(frozen=True)
class MediaOptions:
    """How media are prepared for vLLM.

    Attributes:
        image_width, image_height, image_max_side: the original's resize rules, both modes.
        audio_rate: sample rate (Hz) audio is resampled to for ``multi_modal_data``.
        video_frames: frames sampled uniformly from each video for ``multi_modal_data``.
    """

    image_width: int | None = None
    image_height: int | None = None
    image_max_side: int | None = None
    audio_rate: int = 16000
    video_frames: int = 16

    @property
    def image_sizes(self) -> dict[str, int | None]:
        return {
            "width": self.image_width,
            "height": self.image_height,
            "max_side": self.image_max_side,
        }


def mm_limits(
    limit_mm_per_prompt: Any = None,
    max_images: Any = None,
    max_audios: Any = None,
    max_videos: Any = None,
) -> dict[str, int] | None:
    """vLLM's ``limit_mm_per_prompt`` from the backend's args (None: leave vLLM's default).

    ``limit_mm_per_prompt`` may be a dict or its JSON (``{"image": 20}``) or ``image:20;audio:2``;
    ``max_images``/``max_audios``/``max_videos`` set one kind each and win over it.

    Raises:
        SettingsError: an unknown kind or a count that is not a non-negative integer.
    """
    limits: dict[str, Any] = {}
    if isinstance(limit_mm_per_prompt, str) and limit_mm_per_prompt.strip():
        text = limit_mm_per_prompt.strip()
        if text.startswith("{"):
            try:
                limits = dict(json.loads(text))
            except (json.JSONDecodeError, TypeError, ValueError):
                raise SettingsError(
                    f"vllm-vlm --model_args: limit_mm_per_prompt is not valid JSON: {text!r}"
                ) from None
        else:
            for item in text.split(";"):
                kind, _, count = item.partition(":")
                limits[kind.strip()] = count.strip()
    elif isinstance(limit_mm_per_prompt, Mapping):
        limits = dict(limit_mm_per_prompt)
    for kind, value in (("image", max_images), ("audio", max_audios), ("video", max_videos)):
        if value is not None and str(value).strip().lower() not in ("", "none"):
            limits[kind] = value
    out: dict[str, int] = {}
    for kind, value in limits.items():
        if kind not in MEDIA_KINDS:
            raise SettingsError(
                f"vllm-vlm --model_args: limit_mm_per_prompt has an unknown kind {kind!r} "
                f"(use {', '.join(MEDIA_KINDS)})"
            )
        try:
            count = int(value)
        except (TypeError, ValueError):
            count = -1
        if count < 0:
            raise SettingsError(
                f"vllm-vlm --model_args: the {kind} limit must be a non-negative integer, "
                f"got {value!r}"
            )
        out[kind] = count
    return out or None


def placeholder_strings(processor: Any, overrides: Mapping[str, str | None]) -> dict[str, str]:
    """The text each medium becomes in a plain prompt, per kind.

    An override (``image_string``...) wins; else the text the processor's chat template writes
    for one medium of that kind (e.g. Qwen2-VL's ``<|vision_start|><|image_pad|><|vision_end|>``);
    else the processor's ``image_token``/``audio_token``/``video_token``; else ``<image>``...
    """
    out = {}
    for kind in MEDIA_KINDS:
        out[kind] = (
            overrides.get(kind)
            or _from_chat_template(processor, kind)
            or getattr(processor, f"{kind}_token", None)
            or GENERIC_PLACEHOLDERS[kind]
        )
    return out


def _from_chat_template(processor: Any, kind: str) -> str | None:
    if not getattr(processor, "chat_template", None):
        return None
    content = [
        {"type": "text", "text": _LEFT},
        {"type": kind, kind: None},
        {"type": "text", "text": _RIGHT},
    ]
    try:
        text = processor.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=False
        )
    except Exception:  # noqa: BLE001 - a template that cannot render this kind has no answer
        return None
    if not isinstance(text, str) or _LEFT not in text or _RIGHT not in text:
        return None
    between = text.split(_LEFT, 1)[1].split(_RIGHT, 1)[0]
    return between or None


def templated_prompt(
    processor: Any, messages: Sequence[Mapping[str, Any]], **template_kwargs: Any
) -> str:
    """The prompt for ``messages`` through the processor's chat template, the media parts
    rendered as the model's placeholders; an assistant turn last is continued, not closed."""
    continue_final = bool(messages) and messages[-1].get("role") == "assistant"
    return processor.apply_chat_template(
        # Media travel in multi_modal_data; the template only writes their placeholders.
        map_media(messages, lambda kind, medium: None),
        tokenize=False,
        add_generation_prompt=not continue_final,
        continue_final_message=continue_final,
        **template_kwargs,
    )


def spliced_prompt(messages: Sequence[Mapping[str, Any]], placeholders: Mapping[str, str]) -> str:
    """The prompt without a chat template: texts joined, each medium as its placeholder text."""
    pieces: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            pieces.append(content)
            continue
        for part in content or []:
            kind = part.get("type")
            pieces.append(placeholders[kind] if kind in MEDIA_KINDS else str(part.get("text", "")))
    return "".join(pieces)


def multi_modal_data(
    messages: Sequence[Mapping[str, Any]], options: MediaOptions
) -> dict[str, list]:
    """``multi_modal_data`` for ``LLM.generate``: every medium decoded, in placeholder order.

    Images as RGB PIL images after the resize rules; audio as ``(float32 mono array, rate)`` at
    ``options.audio_rate``; videos as uint8 arrays ``(video_frames, height, width, 3)``.

    Raises:
        MediaError: a medium cannot be decoded (names task, doc and field).
    """
    data: dict[str, list] = {}
    for kind, ref in media_parts(messages):
        if kind == "image":
            item: Any = ref.as_pil(**options.image_sizes)
        elif kind == "audio":
            samples, rate = ref.as_audio(target_rate=options.audio_rate)
            item = (samples, rate)
        else:
            import numpy as np

            frames = ref.as_frames(options.video_frames)
            item = np.stack([np.asarray(frame.convert("RGB")) for frame in frames])
        data.setdefault(kind, []).append(item)
    return data


def chat_conversation(messages: Sequence[Mapping[str, Any]], options: MediaOptions) -> list[dict]:
    """OpenAI-style messages for ``LLM.chat`` (vLLM dialect), images resized as in plain mode
    (the original ignored the resize args here, its bug B22)."""
    render = RenderOptions(
        dialect="vllm",
        image_width=options.image_width,
        image_height=options.image_height,
        image_max_side=options.image_max_side,
    )
    return render_messages(messages, render)
