"""Turns back into OpenAI-shaped messages, for adapters that forward them (the proxy).

Interim: the project's one message builder (``lm_eval_patches/messages.py``, being written on the
``api`` branch) will own dialect rendering; this module then delegates to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lm_eval_patches.server.errors import APIError

if TYPE_CHECKING:
    from lm_eval_patches.server.inputs import ChatTurn


def openai_messages(turns: list[ChatTurn], dialect: str = "vllm") -> list[dict[str, Any]]:
    """``[{"role", "content": [parts]}]`` with media as data URLs of their original bytes."""
    from lm_eval_patches.media.mime import extension_for

    messages = []
    for turn in turns:
        content: list[dict[str, Any]] = []
        for part in turn.parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            elif dialect == "openai" and part.kind == "audio":
                data = part.as_data_url().partition(",")[2]
                fmt = extension_for(part.mime)
                content.append(
                    {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}
                )
            elif dialect == "openai" and part.kind == "video":
                raise APIError(
                    400, "the openai dialect has no video parts", code="unsupported_media"
                )
            else:
                key = f"{part.kind}_url"
                content.append({"type": key, key: {"url": part.as_data_url()}})
        messages.append({"role": turn.role, "content": content})
    return messages
