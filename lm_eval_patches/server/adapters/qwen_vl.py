"""``qwen2-vl``: Qwen2-VL, Qwen2.5-VL and Qwen3-VL (images and videos through their processor).

Loaded with ``AutoModelForImageTextToText``; videos are sampled to ``num_frames`` frames by the
media layer and handed to the processor as one array per video, so no ``qwen_vl_utils`` and no
temporary files are needed. Not runnable on this project's CPU test machines: the Qwen-VL
video processor needs torchvision, which has no CPU wheel here (see docs/backends.md).
"""

from __future__ import annotations

from lm_eval_patches.server.adapters.hf_base import HFChatModel


class QwenVLModel(HFChatModel):
    """Qwen-VL family: images and videos in the client's order."""

    name = "qwen2-vl"
    model_class = "AutoModelForImageTextToText"
    media_kinds = ("image", "video")
