"""``llava-next-video``: LLaVA-NeXT-Video-style models (images, and videos as a stack of
``num_frames`` uniformly sampled frames, decoded by the media layer's seek-based sampler).

Not runnable on this project's CPU test machines: the LLaVA-NeXT-Video video processor of
transformers 5 needs torchvision, which has no CPU wheel here (see docs/backends.md).
"""

from __future__ import annotations

from lm_eval_patches.server.adapters.hf_base import HFChatModel


class LlavaNextVideoModel(HFChatModel):
    """``LlavaNextVideoForConditionalGeneration`` + its processor; images and videos."""

    name = "llava-next-video"
    model_class = "LlavaNextVideoForConditionalGeneration"
    media_kinds = ("image", "video")
