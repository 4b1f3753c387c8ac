"""``llava-next-video``: LLaVA-NeXT-Video-style models (images, and videos as a stack of
``num_frames`` uniformly sampled frames, decoded by the media layer's seek-based sampler)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lm_eval_patches.server.adapters.hf_base import HFChatModel

if TYPE_CHECKING:
    from lm_eval_patches.server.inputs import ChatTurn


class LlavaNextVideoModel(HFChatModel):
    """``LlavaNextVideoForConditionalGeneration`` + its processor; images and videos."""

    name = "llava-next-video"
    model_class = "LlavaNextVideoForConditionalGeneration"
    media_kinds = ("image", "video")

    def media_inputs(self, turns: list[ChatTurn]) -> dict[str, Any]:
        """Images as PIL, each video as a (frames, height, width, 3) uint8 array."""
        import numpy as np

        from lm_eval_patches.server.inputs import all_media

        inputs = super().media_inputs(turns)
        videos = [
            np.stack([np.asarray(frame.convert("RGB")) for frame in ref.as_frames(self.num_frames)])
            for ref in all_media(turns, "video")
        ]
        if videos:
            inputs["videos"] = videos
        return inputs
