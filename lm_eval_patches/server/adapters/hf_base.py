"""Shared machinery of the Hugging Face adapters: load, render the chat, generate, count.

A subclass names its model class (``model_class``, an attribute of ``transformers``), which
media kinds the model takes, and how the processor receives them (``media_inputs``). The chat
goes through the processor's own chat template with Hugging Face's content parts
(``{"type": "image"}``, ``{"type": "audio"}``, ``{"type": "video"}``, ``{"type": "text"}``) in
the order the client sent them (the neutral structure of ``lm_eval_patches.messages`` already
has that shape; the MediaRefs are taken out and passed to the processor alongside).

Model args (``--model-args``): ``device`` (default: cuda when available, else cpu), ``dtype``
(``auto``, ``float32``, ``bfloat16``...), ``trust_remote_code`` (default false),
``num_frames`` (frames sampled per video, default 8), ``max_tokens`` (the default completion
budget when a request names none, default 256), ``image_max_pixels`` (images are decoded reduced
to at most this many pixels; default: the media layer's budget, ``MERA_IMAGE_MAX_PIXELS`` or 50 MP).
"""

from __future__ import annotations

from typing import Any, ClassVar

from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.messages import MEDIA_KINDS
from lm_eval_patches.server.adapters.base import BaseModel, Generation, SamplingParams
from lm_eval_patches.server.errors import APIError
from lm_eval_patches.server.inputs import media_of


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes")


class HFChatModel(BaseModel):
    """A transformers model with a processor and a chat template (one request at a time)."""

    model_class: ClassVar[str] = "AutoModelForImageTextToText"
    # Media kinds the model takes natively; with ``videos_as_frames`` a video becomes frames.
    media_kinds: ClassVar[tuple[str, ...]] = ("image",)
    videos_as_frames: ClassVar[bool] = False

    def init_model(self) -> None:
        import torch
        import transformers

        self.device = self.option("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = self.option("dtype", "auto")
        trust = _truthy(self.option("trust_remote_code", False))
        self.num_frames = int(self.option("num_frames", 8))
        budget = self.option("image_max_pixels")
        self.image_max_pixels = int(budget) if budget else None
        self.processor = transformers.AutoProcessor.from_pretrained(
            self.model_name, trust_remote_code=trust
        )
        cls = getattr(transformers, self.model_class)
        self.model = cls.from_pretrained(
            self.model_name,
            dtype=dtype if dtype == "auto" else getattr(torch, dtype),
            trust_remote_code=trust,
        )
        self.model.to(self.device).eval()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)

    # -- media --------------------------------------------------------------------------------
    def expand(self, messages: list[dict]) -> list[dict]:
        """Check media kinds against the model; turn videos into frame images where asked."""
        from lm_eval_patches.media.ref import frame_refs

        out = []
        for i, message in enumerate(messages):
            parts: list[dict] = []
            for part in message["content"]:
                kind = part["type"]
                if kind not in MEDIA_KINDS or kind in self.media_kinds:
                    parts.append(part)
                elif kind == "video" and self.videos_as_frames:
                    frames = frame_refs(part["video"], self.num_frames)
                    parts.extend({"type": "image", "image": frame} for frame in frames)
                else:
                    raise APIError(
                        400,
                        f"messages[{i}]: this model ({self.name}) does not take {kind} input; "
                        f"it takes {', '.join(self.media_kinds)}",
                        param=f"messages[{i}].content",
                        code="unsupported_media",
                    )
            out.append({"role": message["role"], "content": parts})
        return out

    def chat_messages(self, messages: list[dict]) -> list[dict[str, Any]]:
        """Hugging Face chat-template messages: the same parts with the media left out."""
        return [
            {
                "role": m["role"],
                "content": [
                    p if p["type"] == "text" else {"type": p["type"]} for p in m["content"]
                ],
            }
            for m in messages
        ]

    def media_inputs(self, messages: list[dict]) -> dict[str, Any]:
        """Processor keyword arguments holding the decoded media, in the client's order:
        ``images`` (RGB PIL), ``videos`` (one (frames, height, width, 3) uint8 array per video,
        ``num_frames`` sampled uniformly by seeking) and ``audio`` (mono float32 arrays at the
        feature extractor's ``sampling_rate``), each for the kinds the model takes."""
        import numpy as np

        inputs: dict[str, Any] = {}
        images = [
            ref.as_pil(max_pixels=self.image_max_pixels) for ref in media_of(messages, "image")
        ]
        if images:
            inputs["images"] = images
        videos = media_of(messages, "video") if "video" in self.media_kinds else []
        if videos:
            inputs["videos"] = [
                np.stack([np.asarray(f.convert("RGB")) for f in ref.as_frames(self.num_frames)])
                for ref in videos
            ]
        clips = media_of(messages, "audio")
        if clips and "audio" in self.media_kinds:
            rate = self.processor.feature_extractor.sampling_rate
            inputs["audio"] = [ref.as_audio(target_rate=rate)[0] for ref in clips]
            inputs["sampling_rate"] = rate
        return inputs

    # -- generation ---------------------------------------------------------------------------
    def prepare(self, messages: list[dict]) -> Any:
        """Tokenised model inputs (a BatchFeature on the model's device)."""
        text = self.processor.apply_chat_template(
            self.chat_messages(messages), tokenize=False, add_generation_prompt=True
        )
        inputs = self.processor(text=[text], return_tensors="pt", **self.media_inputs(messages))
        return inputs.to(self.device)

    def generate(self, messages: list[dict], params: SamplingParams) -> Generation:
        import torch

        with_media = self.expand(messages)
        try:
            inputs = self.prepare(with_media)
        except MediaError:
            raise  # names its request field; the app answers it with a 400
        except ValueError as exc:  # media the processor refuses: the client's input is at fault
            raise APIError(400, f"cannot prepare the inputs: {exc}", code="invalid_media") from exc
        kwargs = self.generation_kwargs(params)
        if params.seed is not None:
            torch.manual_seed(params.seed)  # safe: exclusive adapters run one request at a time
        with torch.inference_mode():
            output = self.model.generate(**inputs, **kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        return self.finish(output[0, prompt_len:].tolist(), prompt_len, params)

    def generation_kwargs(self, params: SamplingParams) -> dict[str, Any]:
        """transformers ``generate`` settings for one request (greedy at temperature 0)."""
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens}
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        if params.stop:
            kwargs.update(stop_strings=params.stop, tokenizer=self.tokenizer)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        kwargs["pad_token_id"] = pad
        return kwargs

    def finish(self, new_ids: list[int], prompt_len: int, params: SamplingParams) -> Generation:
        """Decode the new tokens; ``length`` when the budget ran out without an end token."""
        special = set(self.tokenizer.all_special_ids)
        pad = self.tokenizer.pad_token_id
        while new_ids and pad is not None and new_ids[-1] == pad:
            new_ids = new_ids[:-1]  # padding after the end is not part of the answer
        ended = bool(new_ids) and new_ids[-1] in special
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        stopped = any(s and s in text for s in params.stop)
        reason = (
            "length" if len(new_ids) >= params.max_tokens and not (ended or stopped) else "stop"
        )
        return Generation(text, reason, prompt_len, len(new_ids))
