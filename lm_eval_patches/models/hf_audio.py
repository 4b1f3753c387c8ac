"""Audio LMs run locally with transformers: the shared base and ``hf-audiolm-qwen`` (Qwen2-Audio).

Upstream's ``hf-audiolm-qwen`` (``lm_eval.models.hf_audiolm.HFAUDIOLMQWEN``) cannot run in
lm-eval 0.4.13 with transformers 5: the processor no longer takes ``audios=``, tensors are moved
to CUDA unconditionally, and audio is used at whatever rate the dataset stored it (B21). This
subclass keeps upstream's model and processor loading and replaces request handling:

- the prompt and its media go through the one message builder (:mod:`lm_eval_patches.messages`):
  every audio at its placeholder, in the user's turn (B18); with ``--apply_chat_template`` the
  processor's own chat template renders the turns;
- every audio of a request is decoded lazily, down-mixed and resampled to the feature
  extractor's rate (``MediaRef.as_audio``);
- audio longer than the model accepts (the feature extractor's window, 30 s for Qwen2-Audio) is
  cut to it (``long_audio=truncate``, the default, as the feature extractor itself would do) or
  fails its sample (``long_audio=fail``);
- greedy unless ``do_sample`` is truthy (B17); length from ``max_gen_toks`` (B18);
- device and dtype from the model args; a request that cannot be asked is answered with the
  failure answer (``FAILURES``) and the run goes on.

The remote-code families (Qwen-Audio-Chat, MiniCPM-o, Ultravox) subclass this base
(:mod:`lm_eval_patches.models.hf_audio_remote`) and replace only how a prepared request reaches
their model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.models.api_models import JsonChatStr
from tqdm import tqdm

from lm_eval_patches.errors import SettingsError
from lm_eval_patches.failures import FAILURES, build_failure_answer, failed_at_build
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.messages import MessageError, coerce_media, media_parts
from lm_eval_patches.models.hf_scaling import adopt_data_parallel, tensor_parallel_kwargs
from lm_eval_patches.models.local_requests import (
    GenSettings,
    cut_at_stop,
    doc_label,
    request_messages,
)
from lm_eval_patches.registration import import_upstream

HFAUDIOLMQWEN = import_upstream("hf-audiolm-qwen", "lm_eval.models.hf_audiolm", "HFAUDIOLMQWEN")

log = logging.getLogger(__name__)

LONG_AUDIO_POLICIES = ("truncate", "fail")


class RequestError(ValueError):
    """A request this backend cannot ask its model (becomes that sample's failure answer)."""


@dataclass
class AudioRequest:
    """One request ready for the model: messages (media in place), decoded audio, settings."""

    messages: list[dict]
    is_chat: bool
    audios: list[Any]  # float32 mono arrays at the backend's sample rate, in message order
    settings: GenSettings


def default_device(device: str | None) -> str:
    """The ``device`` arg, else CUDA when present, else CPU (upstream assumes CUDA)."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class MeraAudioLM(HFAUDIOLMQWEN):
    """Shared base of the local audio backends; itself runs Qwen2-Audio (``hf-audiolm-qwen``).

    Model args beyond lm-eval's ``hf`` ones: ``max_audios`` (None: no limit; more audio in one
    request fails it), ``long_audio`` (``truncate`` or ``fail``).
    """

    BACKEND_NAME = "hf-audiolm-qwen"
    MEDIA_WINDOW = 64  # requests whose audio is decoded at a time

    def __init__(
        self,
        pretrained: Any,
        max_audios: int | str | None = None,
        long_audio: str = "truncate",
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        if long_audio not in LONG_AUDIO_POLICIES:
            raise SettingsError(
                f"{self.BACKEND_NAME} --model_args: long_audio must be one of "
                f"{', '.join(LONG_AUDIO_POLICIES)}, got {long_audio!r}"
            )
        kwargs = tensor_parallel_kwargs(kwargs)
        super().__init__(pretrained, device=default_device(device), **kwargs)
        adopt_data_parallel(self, kwargs.get("tp_plan"))
        self.max_audios = int(max_audios) if max_audios not in (None, "", "None") else None
        self.long_audio = long_audio
        self.truncated_audio = 0  # clips cut to the model's window (long_audio=truncate)

    # -- what the model wants --------------------------------------------------------------
    @property
    def audio_rate(self) -> int:
        """Sample rate (Hz) the model's feature extractor expects."""
        return int(self.processor.feature_extractor.sampling_rate)

    @property
    def max_audio_seconds(self) -> float | None:
        """Longest audio (s) the model takes at once; None when it has no fixed window."""
        extractor = self.processor.feature_extractor
        samples = getattr(extractor, "n_samples", None)
        return samples / extractor.sampling_rate if samples else None

    def apply_chat_template(
        self, chat_history: list[dict[str, Any]], add_generation_prompt: bool = True
    ) -> JsonChatStr:
        """The history itself (as JSON): it is rendered per request, media in place, by
        :meth:`render_prompt`, so the samples log shows the turns and their placeholders."""
        return JsonChatStr(json.dumps(chat_history, ensure_ascii=False))

    # -- request preparation ---------------------------------------------------------------
    def prepare(self, request: Instance) -> AudioRequest:
        """Messages, resampled audio and settings of one request.

        Raises:
            RequestError, MessageError, MediaError: the request cannot be asked (its reason
            becomes the failure answer).
        """
        messages, is_chat = request_messages(request)
        audios = []
        for kind, medium in media_parts(messages):
            if kind != "audio":
                raise RequestError(
                    f"{self.BACKEND_NAME} passes only audio to the model; the request has {kind}"
                )
            audios.append(self.load_audio(coerce_media(medium, "audio")))
        if self.max_audios is not None and len(audios) > self.max_audios:
            raise RequestError(
                f"the request has {len(audios)} audio clips; max_audios={self.max_audios}"
            )
        settings = GenSettings.from_gen_kwargs(request.args[1], self.max_gen_toks)
        return AudioRequest(messages, is_chat, audios, settings)

    def load_audio(self, ref: Any) -> Any:
        """One clip as float32 mono at :attr:`audio_rate`, within the model's window."""
        samples, rate = ref.as_audio(target_rate=self.audio_rate)
        limit = self.max_audio_seconds
        if limit is None or len(samples) <= limit * rate:
            return samples
        seconds = len(samples) / rate
        if self.long_audio == "fail":
            raise RequestError(
                f"audio {ref.get('name') or ref.sha256[:12]} lasts {seconds:.1f} s; the model "
                f"takes at most {limit:g} s (long_audio=truncate would cut it)"
            )
        if not self.truncated_audio:
            log.warning(
                "%s: audio longer than %g s is cut to its first %g s (long_audio=truncate)",
                self.BACKEND_NAME,
                limit,
                limit,
            )
        self.truncated_audio += 1
        return samples[: int(limit * rate)]

    # -- rendering and generation (Qwen2-Audio; subclasses replace these) ------------------
    def render_prompt(self, item: AudioRequest) -> str:
        """The prompt text: the processor's chat template over the messages (chat mode), or
        the text with each audio as the model's audio-token string (plain mode)."""
        if item.is_chat:
            bare = [
                {
                    **m,
                    "content": [
                        {"type": "audio"} if p.get("type") == "audio" else p for p in m["content"]
                    ],
                }
                for m in item.messages
            ]
            return self.processor.apply_chat_template(
                bare, tokenize=False, add_generation_prompt=True
            )
        slot = "".join(
            getattr(self.processor, name, "") or ""
            for name in ("audio_bos_token", "audio_token", "audio_eos_token")
        )
        return "".join(
            slot if p.get("type") == "audio" else p.get("text", "")
            for m in item.messages
            for p in m["content"]
        )

    def generate_batch(self, batch: list[AudioRequest]) -> list[str]:
        """Replies for requests with equal settings, generated together (left padding)."""
        from lm_eval.models.utils_hf import stop_sequences_criteria

        settings = batch[0].settings
        audios = [a for item in batch for a in item.audios]
        encoding = self.processor(
            text=[self.render_prompt(item) for item in batch],
            audio=audios or None,
            sampling_rate=self.audio_rate,
            padding=True,
            return_tensors="pt",
        )
        encoding = encoding.to(self.device)
        for key, value in encoding.items():
            if torch.is_floating_point(value):
                encoding[key] = value.to(self.model.dtype)
        prompt_len = encoding["input_ids"].shape[1]
        stopping = stop_sequences_criteria(self.tokenizer, settings.until, prompt_len, len(batch))
        with torch.no_grad():
            output = self.model.generate(
                **encoding,
                max_new_tokens=settings.max_new_tokens,
                do_sample=settings.do_sample,
                stopping_criteria=stopping,
                pad_token_id=self.tokenizer.pad_token_id,
                **settings.extra,
            )
        texts = self.tokenizer.batch_decode(output[:, prompt_len:], skip_special_tokens=True)
        return [cut_at_stop(text, settings.until) for text in texts]

    # -- lm-eval entry point ---------------------------------------------------------------
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Replies in request order; failure answers for requests that cannot be asked.

        Audio is decoded ``MEDIA_WINDOW`` requests at a time; within a window, requests with
        equal generation settings are batched ``batch_size`` at a time, in request order.
        """
        answers: list[str] = [""] * len(requests)
        pbar = tqdm(
            total=len(requests),
            disable=disable_tqdm or self.rank != 0,
            desc=f"Running generate_until requests ({self.BACKEND_NAME})",
        )
        size = self.batch_size if isinstance(self.batch_size, int) else 1
        for start in range(0, len(requests), self.MEDIA_WINDOW):
            window = requests[start : start + self.MEDIA_WINDOW]
            groups: dict[str, list[tuple[int, AudioRequest]]] = {}
            for index, request in enumerate(window, start):
                if failed_at_build(request.args):
                    answers[index] = build_failure_answer(request.args)
                    continue
                try:
                    item = self.prepare(request)
                except (RequestError, MessageError, MediaError, SettingsError) as err:
                    answers[index] = FAILURES.record(
                        request.task_name, doc_label(request), str(err)
                    )
                    continue
                groups.setdefault(item.settings.key(), []).append((index, item))
            for items in groups.values():
                for b in range(0, len(items), size):
                    self._answer_batch(requests, items[b : b + size], answers)
            pbar.update(len(window))
        pbar.close()
        return answers

    def _answer_batch(
        self, requests: list[Instance], batch: list[tuple[int, AudioRequest]], answers: list[str]
    ) -> None:
        try:
            replies = self.generate_batch([item for _, item in batch])
        except (RuntimeError, ValueError, TypeError) as err:
            # The model or its processor refused this batch: its samples fail, the run goes on.
            reason = str(err) if isinstance(err, RequestError) else f"{type(err).__name__}: {err}"
            for index, _ in batch:
                request = requests[index]
                answers[index] = FAILURES.record(request.task_name, doc_label(request), reason)
            return
        for (index, _), reply in zip(batch, replies, strict=True):
            answers[index] = reply
            self.cache_hook.add_partial("generate_until", requests[index].args, reply)
