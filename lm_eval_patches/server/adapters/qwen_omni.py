"""``qwen2.5-omni``: Qwen2.5-Omni (and Qwen3-Omni with ``model_class=...``): text, images,
audio and video in, text out (the talker's speech output is switched off).

Model args as for every Hugging Face adapter, plus ``model_class`` (default
``Qwen2_5OmniForConditionalGeneration``; ``Qwen3OmniMoeForConditionalGeneration`` for Qwen3-Omni).
The audio track of a video is not used (``use_audio_in_video`` false, as the original ran it).
Needs the real checkpoint and a GPU; not exercised by this project's CPU tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lm_eval_patches.server.adapters.hf_base import HFChatModel

if TYPE_CHECKING:
    from lm_eval_patches.server.adapters.base import SamplingParams


class QwenOmniModel(HFChatModel):
    """Qwen-Omni thinker: every media kind, answered as text."""

    name = "qwen2.5-omni"
    model_class = "Qwen2_5OmniForConditionalGeneration"
    media_kinds = ("image", "audio", "video")

    def init_model(self) -> None:
        self.model_class = self.option("model_class", type(self).model_class)
        super().init_model()
        if hasattr(self.model, "disable_talker"):
            self.model.disable_talker()  # text answers only: no speech weights in memory

    def media_inputs(self, messages: list[dict]) -> dict[str, Any]:
        # The audio track of a video is not used (as the original ran these models).
        return {**super().media_inputs(messages), "use_audio_in_video": False}

    def generation_kwargs(self, params: SamplingParams) -> dict[str, Any]:
        kwargs = super().generation_kwargs(params)
        kwargs.update(return_audio=False, use_audio_in_video=False)
        return kwargs
