"""Audio LMs whose model code ships inside their checkpoints (``trust_remote_code``).

``hf-audiolm-qwen-audio-chat`` (Qwen-Audio-Chat), ``hf-audiolm-minicpm`` (MiniCPM-o) and
``hf-audiolm-ultravox`` (Ultravox) share :class:`~lm_eval_patches.models.hf_audio.MeraAudioLM`:
messages from the one message builder, every audio resampled to 16 kHz mono, greedy unless
``do_sample`` is truthy, length from ``max_gen_toks``, per-sample failures. Each family only
says how a prepared request reaches its model's own chat API. Their code is run only when the
user passes ``trust_remote_code=True`` (or lm-eval's ``--trust_remote_code``); without it
transformers refuses to load them and says so.

What differs from the original project's branches (spec section 13.3):

- Qwen-Audio-Chat: every audio and every turn is used (B19: only the first of each); audio
  files are content-addressed WAVs at 16 kHz, never named after the source file (collisions);
- MiniCPM-o: greedy unless asked (B17: sampling whenever ``do_sample`` was present); text and
  audio in placeholder order, not text first;
- Ultravox: the prompt in the user role (B18: assistant), ``max_new_tokens`` from
  ``max_gen_toks`` (B18: fixed 30); the pipeline takes one audio per prompt, so a request
  with more fails with that reason instead of silently dropping the rest (B18).

These families cannot be fetched here; the tests run them against stand-ins with the same
interfaces (``tests/standin_audio``), see docs/backends.md.
"""

from __future__ import annotations

import os
from typing import Any

import transformers

from lm_eval_patches.errors import SettingsError
from lm_eval_patches.media.audio import encode_wav
from lm_eval_patches.media.ref import MediaRef, media_root
from lm_eval_patches.models.hf_audio import AudioRequest, MeraAudioLM, RequestError
from lm_eval_patches.models.local_requests import cut_at_stop

WHISPER_RATE = 16000  # all three families feed a Whisper-style encoder


class MeraRemoteAudioLM(MeraAudioLM):
    """Base of the remote-code families: tokenizer only (no processor), one request at a time."""

    AUTO_MODEL_CLASS = transformers.AutoModel
    MAX_AUDIO_SECONDS: float | None = None

    def _create_tokenizer(
        self,
        pretrained: Any,
        tokenizer: Any,
        revision: str | None = "main",
        trust_remote_code: bool | None = False,
        **kwargs: Any,
    ) -> None:
        name = tokenizer if isinstance(tokenizer, str) else pretrained
        if not isinstance(name, str):
            name = self.model.name_or_path
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            name, revision=revision, trust_remote_code=trust_remote_code
        )
        self.processor = None

    @property
    def audio_rate(self) -> int:
        return WHISPER_RATE

    @property
    def max_audio_seconds(self) -> float | None:
        return self.MAX_AUDIO_SECONDS

    def generate_batch(self, batch: list[AudioRequest]) -> list[str]:
        """These chat APIs take one conversation per call."""
        return [cut_at_stop(self.generate_one(item), item.settings.until) for item in batch]

    def _answer_batch(self, requests: list, batch: list, answers: list[str]) -> None:
        # One conversation per call, so one refused request fails alone.
        for pair in batch:
            super()._answer_batch(requests, [pair], answers)

    def generate_one(self, item: AudioRequest) -> str:
        raise NotImplementedError


class MeraQwenAudioChatLM(MeraRemoteAudioLM):
    """``hf-audiolm-qwen-audio-chat``: ``model.chat(tokenizer, query, history, system)``."""

    BACKEND_NAME = "hf-audiolm-qwen-audio-chat"
    AUTO_MODEL_CLASS = transformers.AutoModelForCausalLM
    MAX_AUDIO_SECONDS = 30.0  # its Whisper encoder's window

    def generate_one(self, item: AudioRequest) -> str:
        clips = iter(item.audios)
        system = None
        turns: list[tuple[str, str]] = []  # (role, query text)
        for message in item.messages:
            if message["role"] == "system":
                system = "".join(p.get("text", "") for p in message["content"])
                continue
            elements = [
                {"audio": self._audio_file(next(clips))}
                if p["type"] == "audio"
                else {"text": p.get("text", "")}
                for p in message["content"]
            ]
            turns.append((message["role"], self.tokenizer.from_list_format(elements)))
        if not turns or turns[-1][0] != "user":
            raise RequestError("Qwen-Audio-Chat needs the prompt to end with a user turn")
        history = [
            (query, answer)
            for (role, query), (next_role, answer) in zip(turns[:-1:2], turns[1:-1:2], strict=False)
            if role == "user" and next_role == "assistant"
        ]
        settings = item.settings
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": settings.do_sample,
            **settings.extra,
        }
        if system is not None:
            kwargs["system"] = system
        reply, _ = self.model.chat(self.tokenizer, query=turns[-1][1], history=history, **kwargs)
        return reply

    def _audio_file(self, samples: Any) -> str:
        """A content-addressed 16 kHz WAV of the (resampled) clip, written once."""
        wav = encode_wav(samples, WHISPER_RATE, subtype="PCM_16")
        ref = MediaRef.from_bytes("audio", wav)
        return os.fspath(ref.as_file(media_root()))


class MeraMiniCPMAudioLM(MeraRemoteAudioLM):
    """``hf-audiolm-minicpm``: ``model.chat(msgs, tokenizer, sampling, max_new_tokens, ...)``
    with each message's content a list of strings and 16 kHz arrays in placeholder order."""

    BACKEND_NAME = "hf-audiolm-minicpm"

    def generate_one(self, item: AudioRequest) -> str:
        clips = iter(item.audios)
        msgs = [
            {
                "role": m["role"],
                "content": [
                    next(clips) if p["type"] == "audio" else p.get("text", "") for p in m["content"]
                ],
            }
            for m in item.messages
        ]
        settings = item.settings
        reply = self.model.chat(
            msgs=msgs,
            tokenizer=self.tokenizer,
            sampling=settings.do_sample,
            max_new_tokens=settings.max_new_tokens,
            use_tts_template=False,
            generate_audio=False,
            max_slice_nums=1,
            use_image_id=False,
            **settings.extra,
        )
        return reply if isinstance(reply, str) else str(getattr(reply, "text", reply))


class MeraUltravoxLM(MeraRemoteAudioLM):
    """``hf-audiolm-ultravox``: the checkpoint's own pipeline, given
    ``{"audio", "turns", "sampling_rate"}`` with ``<|audio|>`` where the audio was."""

    BACKEND_NAME = "hf-audiolm-ultravox"
    AUDIO_PLACEHOLDER = "<|audio|>"

    def __init__(self, pretrained: Any, **kwargs: Any) -> None:
        super().__init__(pretrained, max_audios=kwargs.pop("max_audios", 1), **kwargs)
        from transformers.dynamic_module_utils import get_class_from_dynamic_module

        pipelines = getattr(self.model.config, "custom_pipelines", None) or {}
        if len(pipelines) != 1:
            raise SettingsError(
                f"{self.BACKEND_NAME}: the checkpoint must declare one custom pipeline "
                f"(config.custom_pipelines), found {len(pipelines)}"
            )
        (spec,) = pipelines.values()
        name = pretrained if isinstance(pretrained, str) else self.model.name_or_path
        pipeline_class = get_class_from_dynamic_module(spec["impl"], name)
        # Reuse the loaded model: the pipeline would otherwise load a second copy.
        self.pipeline = pipeline_class(model=self.model, tokenizer=self.tokenizer)

    def generate_one(self, item: AudioRequest) -> str:
        if len(item.audios) != 1:
            raise RequestError(
                f"Ultravox's pipeline takes one audio per prompt; the request has "
                f"{len(item.audios)}"
            )
        turns = [
            {
                "role": m["role"],
                "content": "".join(
                    self.AUDIO_PLACEHOLDER if p["type"] == "audio" else p.get("text", "")
                    for p in m["content"]
                ),
            }
            for m in item.messages
        ]
        settings = item.settings
        options: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens}
        if settings.do_sample:  # the pipeline samples exactly when a temperature is given
            options["temperature"] = settings.extra.get("temperature", 1.0)
        inputs = {"audio": item.audios[0], "turns": turns, "sampling_rate": WHISPER_RATE}
        return self.pipeline(inputs, **options)
