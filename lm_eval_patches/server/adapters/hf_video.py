"""``llava-next-video``: LLaVA-NeXT-Video-style models (images, and videos as a stack of
``num_frames`` uniformly sampled frames, decoded by the media layer's seek-based sampler)."""

from __future__ import annotations

from typing import Any

from lm_eval_patches.server.adapters.hf_base import HFChatModel
from lm_eval_patches.server.inputs import media_of


class LlavaNextVideoModel(HFChatModel):
    """``LlavaNextVideoForConditionalGeneration`` + its processor; images and videos."""

    name = "llava-next-video"
    model_class = "LlavaNextVideoForConditionalGeneration"
    media_kinds = ("image", "video")

    def media_inputs(self, messages: list[dict]) -> dict[str, Any]:
        """Images as PIL, each video as a (frames, height, width, 3) uint8 array."""
        import numpy as np

        inputs = super().media_inputs(messages)
        videos = [
            np.stack([np.asarray(frame.convert("RGB")) for frame in ref.as_frames(self.num_frames)])
            for ref in media_of(messages, "video")
        ]
        if videos:
            inputs["videos"] = videos
        return inputs
