"""``qwen2-audio``: Qwen2-Audio-style audio-text models (processor takes ``audio=`` arrays at
its feature extractor's sampling rate; the chat template places one audio slot per part)."""

from __future__ import annotations

from typing import Any

from lm_eval_patches.server.adapters.hf_base import HFChatModel
from lm_eval_patches.server.inputs import media_of


class Qwen2AudioModel(HFChatModel):
    """``Qwen2AudioForConditionalGeneration`` + its processor; audio only."""

    name = "qwen2-audio"
    model_class = "Qwen2AudioForConditionalGeneration"
    media_kinds = ("audio",)

    def media_inputs(self, messages: list[dict]) -> dict[str, Any]:
        """Mono float32 arrays resampled to the feature extractor's rate (16 kHz for Whisper)."""
        rate = self.processor.feature_extractor.sampling_rate
        audio = [ref.as_audio(target_rate=rate)[0] for ref in media_of(messages, "audio")]
        return {"audio": audio, "sampling_rate": rate} if audio else {}
