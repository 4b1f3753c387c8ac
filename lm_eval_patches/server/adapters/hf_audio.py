"""``qwen2-audio``: Qwen2-Audio-style audio-text models (the processor takes ``audio=`` arrays
at its feature extractor's sampling rate; the chat template places one audio slot per part)."""

from __future__ import annotations

from lm_eval_patches.server.adapters.hf_base import HFChatModel


class Qwen2AudioModel(HFChatModel):
    """``Qwen2AudioForConditionalGeneration`` + its processor; audio only."""

    name = "qwen2-audio"
    model_class = "Qwen2AudioForConditionalGeneration"
    media_kinds = ("audio",)
