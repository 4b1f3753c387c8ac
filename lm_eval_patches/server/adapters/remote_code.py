"""Families whose model code ships with the checkpoint (``trust_remote_code``): Ultravox,
MiniCPM-o 2.6 and Phi-4-multimodal. Each renders the conversation in its model's own format.

These need their real checkpoints (and, in practice, a GPU), so the project's CPU tests cover
only their renderers (``ultravox_turns``, ``minicpm_messages``, ``phi4_prompt``); see
docs/backends.md. Model args: ``device``, ``dtype`` (default ``bfloat16``), ``num_frames``.
"""

from __future__ import annotations

from typing import Any

from lm_eval_patches.messages import MEDIA_KINDS
from lm_eval_patches.server.adapters.base import BaseModel, Generation, SamplingParams
from lm_eval_patches.server.adapters.hf_base import HFChatModel
from lm_eval_patches.server.errors import APIError

AUDIO_RATE = 16000  # all three families take 16 kHz mono


def _only(messages: list[dict], kinds: tuple[str, ...], family: str) -> None:
    for i, message in enumerate(messages):
        for part in message["content"]:
            if part["type"] in MEDIA_KINDS and part["type"] not in kinds:
                raise APIError(
                    400,
                    f"messages[{i}]: {family} does not take {part['type']} input",
                    param=f"messages[{i}].content",
                    code="unsupported_media",
                )


def _torch_dtype(name: str) -> Any:
    import torch

    return name if name == "auto" else getattr(torch, name)


def ultravox_turns(messages: list[dict]) -> tuple[list[dict[str, str]], list[Any]]:
    """Ultravox's pipeline input: text turns with ``<|audio|>`` where each clip was, and the
    clips (16 kHz float32 arrays) in order. Ultravox takes text and audio only."""
    _only(messages, ("audio",), "Ultravox")
    out, clips = [], []
    for message in messages:
        text = []
        for part in message["content"]:
            if part["type"] == "text":
                text.append(part["text"])
            else:
                text.append("<|audio|>")
                clips.append(part["audio"].as_audio(target_rate=AUDIO_RATE)[0])
        out.append({"role": message["role"], "content": "".join(text)})
    return out, clips


class UltravoxModel(BaseModel):
    """fixie-ai/ultravox-* through its transformers pipeline (one clip per request)."""

    name = "ultravox"

    def init_model(self) -> None:
        import transformers

        self.pipe = transformers.pipeline(
            model=self.model_name,
            trust_remote_code=True,
            device=self.option("device"),
            dtype=_torch_dtype(self.option("dtype", "bfloat16")),
        )

    def generate(self, messages: list[dict], params: SamplingParams) -> Generation:
        chat, clips = ultravox_turns(messages)
        if len(clips) != 1:
            raise APIError(400, f"Ultravox takes exactly one audio clip, got {len(clips)}")
        kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens}
        if not params.greedy:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        text = self.pipe({"audio": clips[0], "turns": chat, "sampling_rate": AUDIO_RATE}, **kwargs)
        text = text if isinstance(text, str) else str(text)
        used = len(self.pipe.tokenizer(text)["input_ids"])
        return Generation(text, "length" if used >= params.max_tokens else "stop", 0, used)


def minicpm_messages(messages: list[dict], num_frames: int) -> list[dict[str, Any]]:
    """MiniCPM-o's ``chat(msgs=...)`` input: per turn a list of text, PIL images (a video as
    ``num_frames`` frames) and 16 kHz audio arrays, in the client's order."""
    msgs = []
    for message in messages:
        content: list[Any] = []
        for part in message["content"]:
            kind = part["type"]
            if kind == "text":
                content.append(part["text"])
            elif kind == "image":
                content.append(part["image"].as_pil())
            elif kind == "video":
                content.extend(part["video"].as_frames(num_frames))
            else:
                content.append(part["audio"].as_audio(target_rate=AUDIO_RATE)[0])
        msgs.append({"role": message["role"], "content": content})
    return msgs


class MiniCPMOModel(BaseModel):
    """openbmb/MiniCPM-o-2_6 through its own ``model.chat``."""

    name = "minicpm-o"

    def init_model(self) -> None:
        import transformers

        self.model = transformers.AutoModel.from_pretrained(
            self.model_name,
            trust_remote_code=True,
            dtype=_torch_dtype(self.option("dtype", "bfloat16")),
            init_tts=False,
        )
        self.model.to(self.option("device") or "cuda").eval()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            self.model_name, trust_remote_code=True
        )
        self.num_frames = int(self.option("num_frames", 8))

    def generate(self, messages: list[dict], params: SamplingParams) -> Generation:
        import torch

        if params.seed is not None:
            torch.manual_seed(params.seed)
        text = self.model.chat(
            msgs=minicpm_messages(messages, self.num_frames),
            tokenizer=self.tokenizer,
            sampling=not params.greedy,
            temperature=params.temperature,
            top_p=params.top_p,
            max_new_tokens=params.max_tokens,
            omni_input=False,
        )
        used = len(self.tokenizer(text)["input_ids"])
        return Generation(text, "length" if used >= params.max_tokens else "stop", 0, used)


def phi4_prompt(messages: list[dict]) -> tuple[str, list[Any], list[Any]]:
    """Phi-4-multimodal's prompt: ``<|role|>...<|end|>`` turns with numbered ``<|image_N|>`` and
    ``<|audio_N|>`` tags where the media were, ending with ``<|assistant|>``; plus the images
    (PIL) and the audio clips ``(array, 16000)`` in order. Phi-4 takes images and audio."""
    _only(messages, ("image", "audio"), "Phi-4-multimodal")
    pieces, images, audio = [], [], []
    for message in messages:
        pieces.append(f"<|{message['role']}|>")
        for part in message["content"]:
            if part["type"] == "text":
                pieces.append(part["text"])
            elif part["type"] == "image":
                images.append(part["image"].as_pil())
                pieces.append(f"<|image_{len(images)}|>")
            else:
                audio.append((part["audio"].as_audio(target_rate=AUDIO_RATE)[0], AUDIO_RATE))
                pieces.append(f"<|audio_{len(audio)}|>")
        pieces.append("<|end|>")
    pieces.append("<|assistant|>")
    return "".join(pieces), images, audio


class Phi4MultimodalModel(HFChatModel):
    """microsoft/Phi-4-multimodal-instruct: its own prompt format, the shared generation."""

    name = "phi-4-multimodal"
    model_class = "AutoModelForCausalLM"
    media_kinds = ("image", "audio")

    def init_model(self) -> None:
        self.options.setdefault("trust_remote_code", "true")
        self.options.setdefault("dtype", "bfloat16")
        super().init_model()

    def prepare(self, messages: list[dict]) -> Any:
        prompt, images, audio = phi4_prompt(messages)
        inputs = self.processor(
            text=prompt, images=images or None, audios=audio or None, return_tensors="pt"
        )
        return inputs.to(self.device)
