"""``vllm-vlm``: upstream's VLLM_VLM with MERA's images, audio and video.

A thin subclass of lm-eval 0.4.13's ``lm_eval.models.vllm_vlms.VLLM_VLM`` (engine construction,
tokenizer, ``tensor_parallel_size``, ``data_parallel_size`` through Ray, LoRA and generation
settings stay upstream's). What differs:

- vLLM is imported only when this backend is used; without it the run stops with one line
  naming ``pip install 'mera-multimodal[vllm]'`` (upstream fails on ``import ray``; bug B13);
- every request goes through the one message builder (:mod:`lm_eval_patches.messages`), so
  images, audio and video land at their placeholders, few-shot media in their turns;
- plain mode (``LLM.generate``): the prompt with the model's own placeholder text (its
  processor's chat template, or spliced in without ``--apply_chat_template``) and
  ``multi_modal_data`` with images (resized), audio as ``(array, rate)`` at the processor's
  feature-extractor rate, videos as frame arrays (``video_frames``);
- chat mode (``--pass_multimodal_args_to_chat_history``, ``LLM.chat``): OpenAI-style content
  parts with data URLs, images resized by the same ``image_*`` args (bug B22);
- ``limit_mm_per_prompt`` from the args (a dict, JSON, or ``max_images``/``max_audios``/
  ``max_videos``);
- a request whose media cannot be decoded, or that vLLM refuses, is answered with the failure
  answer from ``FAILURES.record`` and the rest of the run goes on.
"""

from __future__ import annotations

import json
import logging
from importlib.util import find_spec
from typing import Any

from lm_eval_patches.errors import SettingsError, UserError
from lm_eval_patches.failures import (
    FAILURES,
    build_failure_answer,
    failed_at_build,
    is_failure,
)
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.image import check_resize_args
from lm_eval_patches.messages import ChatHistory, MessageError
from lm_eval_patches.models import vllm_inputs
from lm_eval_patches.models.local_requests import doc_label, optional_int, request_messages
from lm_eval_patches.registration import import_upstream

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'mera-multimodal[vllm]'"


def _upstream_class() -> type:
    """Upstream's VLLM_VLM, or a UserError naming the extra when vLLM (or Ray) is missing."""
    missing = [name for name in ("vllm", "ray") if find_spec(name) is None]
    if missing:
        raise UserError(
            f"--model vllm-vlm needs {' and '.join(missing)}, not installed here: "
            f"{INSTALL_HINT} (on a machine with a CUDA GPU)"
        )
    return import_upstream("vllm-vlm", "lm_eval.models.vllm_vlms", "VLLM_VLM")


VLLM_VLM = _upstream_class()


class MeraVLLMVLM(VLLM_VLM):
    """vLLM vision/audio-language models on MERA requests (see the module docstring)."""

    MULTIMODAL = True
    # Requests whose media are decoded at a time when batch_size is "auto".
    MEDIA_WINDOW = 256

    def __init__(
        self,
        pretrained: str,
        image_width: int | str | None = None,
        image_height: int | str | None = None,
        image_max_side: int | str | None = None,
        limit_mm_per_prompt: Any = None,
        max_images: int | str | None = None,
        max_audios: int | str | None = None,
        max_videos: int | str | None = None,
        video_frames: int | str = 16,
        audio_sample_rate: int | str | None = None,
        image_string: str | None = None,
        audio_string: str | None = None,
        video_string: str | None = None,
        **kwargs: Any,
    ) -> None:
        sizes = {
            "width": optional_int("vllm-vlm", "image_width", image_width),
            "height": optional_int("vllm-vlm", "image_height", image_height),
            "max_side": optional_int("vllm-vlm", "image_max_side", image_max_side),
        }
        try:  # before the engine starts, so a bad combination fails fast
            check_resize_args(**sizes)
        except ValueError as exc:
            raise SettingsError(f"vllm-vlm --model_args: {exc}") from exc
        frames = optional_int("vllm-vlm", "video_frames", video_frames) or 0
        if frames < 1:
            raise SettingsError("vllm-vlm --model_args: video_frames must be positive")
        limits = vllm_inputs.mm_limits(limit_mm_per_prompt, max_images, max_audios, max_videos)
        if limits:
            kwargs["limit_mm_per_prompt"] = limits
        # Upstream's own image_*/max_images stay unset: it would resize by its rules, and
        # max_images would overwrite limit_mm_per_prompt with an image-only limit.
        super().__init__(pretrained, **kwargs)
        rate = optional_int("vllm-vlm", "audio_sample_rate", audio_sample_rate)
        extractor = getattr(self.processor, "feature_extractor", None)
        rate = rate or getattr(extractor, "sampling_rate", None) or 16000
        self.media_options = vllm_inputs.MediaOptions(
            image_width=sizes["width"],
            image_height=sizes["height"],
            image_max_side=sizes["max_side"],
            audio_rate=int(rate),
            video_frames=frames,
        )
        self.placeholders = vllm_inputs.placeholder_strings(
            self.processor, {"image": image_string, "audio": audio_string, "video": video_string}
        )

    # -- prompts ------------------------------------------------------------------------------
    def apply_chat_template(
        self, chat_history: list[dict[str, Any]], add_generation_prompt: bool = True
    ) -> Any:
        """The chat history as lm-eval's JSON chat: the media are placed (and the model's
        template applied) per request, once its media are known."""
        from lm_eval.models.api_models import JsonChatStr

        self.chat_applied = True
        return JsonChatStr(json.dumps(chat_history, ensure_ascii=False))

    def prepare(self, request: Any) -> tuple[str, Any]:
        """``("generate", {"prompt", "multi_modal_data"})``, or ``("chat", conversation)``
        (``"chat_continue"`` when the conversation ends with an assistant turn to continue).

        Raises:
            MessageError, MediaError: the request cannot be built (placeholders vs media,
                undecodable media); the caller records it as this request's failure.
        """
        context = request.args[0]
        messages, _ = request_messages(request)
        if isinstance(context, ChatHistory):  # pass mode: media inside the messages
            conversation = vllm_inputs.chat_conversation(messages, self.media_options)
            # A gen_prefix ends the chat with an assistant turn that the model continues.
            continues = bool(messages) and messages[-1].get("role") == "assistant"
            return ("chat_continue" if continues else "chat"), conversation
        if isinstance(context, str):
            prompt = vllm_inputs.spliced_prompt(messages, self.placeholders)
        else:
            # The processor's template knows media parts; a tokenizer-only model has none.
            templater = self.processor if getattr(self.processor, "chat_template", None) else None
            prompt = vllm_inputs.templated_prompt(
                templater or self.tokenizer, messages, **self.chat_template_args
            )
        data = vllm_inputs.multi_modal_data(messages, self.media_options)
        item: dict[str, Any] = {"prompt": prompt}
        if data:
            item["multi_modal_data"] = data
        return "generate", item

    # -- engine -------------------------------------------------------------------------------
    def run_engine(self, method: str, inputs: list, sampling_params: Any) -> list:
        """``LLM.generate`` or ``LLM.chat`` over ``inputs``; with ``data_parallel_size`` > 1 the
        inputs are split over that many engines through Ray, as upstream does for text."""
        extra: dict[str, Any] = {}
        if self.lora_request is not None:
            extra["lora_request"] = self.lora_request
        if method.startswith("chat"):
            continues = method == "chat_continue"
            method = "chat"
            extra["add_generation_prompt"] = not continues
            extra["continue_final_message"] = continues
            if self.chat_template_args:
                extra["chat_template_kwargs"] = dict(self.chat_template_args)
        if self.data_parallel_size > 1:
            import ray
            from lm_eval.models.utils import undistribute
            from more_itertools import distribute

            @ray.remote
            def run_shard(model_args: dict, shard: list) -> list:
                from vllm import LLM

                engine = LLM(**model_args)
                return getattr(engine, method)(shard, sampling_params=sampling_params, **extra)

            shards = [list(s) for s in distribute(self.data_parallel_size, inputs)]
            results = ray.get([run_shard.remote(self.model_args, shard) for shard in shards])
            ray.shutdown()
            return undistribute(results)
        call = getattr(self.model, method)
        return call(inputs, sampling_params=sampling_params, use_tqdm=False, **extra)

    def _answers(self, method: str, batch: list, sampling_params: Any) -> list[str]:
        """Answers for a batch; when vLLM refuses the batch, each request alone, so one bad
        request (too long, too many media) fails by itself."""
        inputs = [item for _, item in batch]
        try:
            return [out.outputs[0].text for out in self.run_engine(method, inputs, sampling_params)]
        except Exception as exc:  # noqa: BLE001 - vLLM raises plain ValueErrors
            if len(batch) == 1 or self.data_parallel_size > 1:
                return [
                    FAILURES.record(r.task_name, doc_label(r), f"vLLM refused it: {exc}")
                    for r, _ in batch
                ]
        return [self._answers(method, [pair], sampling_params)[0] for pair in batch]

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        """Answers in request order; failed requests get the failure answer with a reason."""
        from tqdm import tqdm
        from vllm import SamplingParams

        answers: list[str] = [""] * len(requests)
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(json.dumps(request.args[1], sort_keys=True, default=str), []).append(
                index
            )
        size = self.batch_size if isinstance(self.batch_size, int) else self.MEDIA_WINDOW
        eos = self.tokenizer.decode(self.eot_token_id)
        pbar = tqdm(
            total=len(requests),
            disable=disable_tqdm or self.rank != 0,
            desc="Running generate_until requests (vllm-vlm)",
        )
        for indices in groups.values():
            kwargs, until, max_gen_toks = self.modify_gen_kwargs(
                dict(requests[indices[0]].args[1]), eos=eos, default_max_gen_toks=self.max_gen_toks
            )
            params = SamplingParams(max_tokens=max_gen_toks, stop=until, **kwargs)
            for start in range(0, len(indices), max(size, 1)):
                by_method: dict[str, list] = {"generate": [], "chat": [], "chat_continue": []}
                for index in indices[start : start + max(size, 1)]:
                    request = requests[index]
                    if failed_at_build(request.args):
                        answers[index] = build_failure_answer(request.args)
                        continue
                    try:
                        method, item = self.prepare(request)
                    except (MessageError, MediaError) as err:
                        answers[index] = FAILURES.record(
                            request.task_name, doc_label(request), str(err)
                        )
                        continue
                    except Exception as exc:  # noqa: BLE001 - e.g. a chat template that fails
                        reason = f"cannot build the vLLM input: {type(exc).__name__}: {exc}"
                        answers[index] = FAILURES.record(
                            request.task_name, doc_label(request), reason
                        )
                        continue
                    by_method[method].append((index, item))
                for method, batch in by_method.items():
                    if not batch:
                        continue
                    texts = self._answers(
                        method, [(requests[i], item) for i, item in batch], params
                    )
                    for (index, _), text in zip(batch, texts, strict=True):
                        answers[index] = text
                        if not is_failure(text):
                            args = requests[index].args[:2]
                            self.cache_hook.add_partial("generate_until", args, text)
                pbar.update(min(max(size, 1), len(indices) - start))
        pbar.close()
        return answers
