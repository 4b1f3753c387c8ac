"""``hf-image-text-to-text``: any transformers image-text-to-text model with a chat template
(LLaVA, Idefics, Gemma 3, ...). A video is sent to it as ``num_frames`` frames, in place."""

from __future__ import annotations

from lm_eval_patches.server.adapters.hf_base import HFChatModel


class ImageTextToTextModel(HFChatModel):
    """``AutoModelForImageTextToText`` + ``AutoProcessor``; images, and videos as frames."""

    name = "hf-image-text-to-text"
    model_class = "AutoModelForImageTextToText"
    media_kinds = ("image",)
    videos_as_frames = True
