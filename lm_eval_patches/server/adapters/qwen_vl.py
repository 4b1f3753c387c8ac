"""``qwen2-vl``: Qwen2-VL, Qwen2.5-VL and Qwen3-VL (images and videos through their processor).

Loaded with ``AutoModelForImageTextToText``; videos are sampled to ``num_frames`` frames by the
media layer and handed to the processor as one array per video, so no ``qwen_vl_utils`` and no
temporary files are needed. Not runnable on this project's CPU test machines: the Qwen-VL
video processor needs torchvision, which has no CPU wheel here (see docs/backends.md).
"""

from __future__ import annotations

from typing import Any

from lm_eval_patches.server.adapters.hf_base import HFChatModel
from lm_eval_patches.server.inputs import media_of


def video_arrays(messages: list[dict], num_frames: int) -> list[Any]:
    """Each video of the conversation as a (frames, height, width, 3) uint8 array, in order."""
    import numpy as np

    return [
        np.stack([np.asarray(frame.convert("RGB")) for frame in ref.as_frames(num_frames)])
        for ref in media_of(messages, "video")
    ]


class QwenVLModel(HFChatModel):
    """Qwen-VL family: images and videos in the client's order."""

    name = "qwen2-vl"
    model_class = "AutoModelForImageTextToText"
    media_kinds = ("image", "video")

    def media_inputs(self, messages: list[dict]) -> dict[str, Any]:
        inputs = super().media_inputs(messages)
        videos = video_arrays(messages, self.num_frames)
        if videos:
            inputs["videos"] = videos
        return inputs
