"""``local-chat-completions`` and ``openai-chat-completions`` with MERA's images, audio and video.

Thin subclasses of lm-eval 0.4.13's ``LocalChatCompletion`` / ``OpenAIChatCompletion``:
payload fields, authentication (``OPENAI_API_KEY``), reply parsing and the chat-history JSON
stay upstream's. What differs:

- every medium of a request is sent at its placeholder, in its turn (few-shot media in their
  turns with ``--fewshot_as_multiturn``), with its real MIME type and original bytes, built by
  :mod:`lm_eval_patches.messages` in the ``media_dialect`` asked for (``vllm`` or ``openai``);
  ``image_width`` / ``image_height`` / ``image_max_side`` resize by the original's rules;
  ``video_frames=N`` (or ``--replace_videos_with_images_amount N``) sends videos as frames;
- requests go out ``num_concurrent`` at a time; transient failures are retried with
  exponential backoff and jitter, honouring ``Retry-After``; ``timeout`` (seconds) bounds
  each attempt; a request that still fails is recorded as that sample's failure, and the run
  goes on (:mod:`lm_eval_patches.models.api_transport`);
- ``max_tokens_field``: ``auto`` sends both ``max_tokens`` and ``max_completion_tokens`` from
  ``local-chat-completions`` (vLLM, SGLang, the original's FastAPI server and ours all accept
  that) and ``max_completion_tokens`` from ``openai-chat-completions``; a server that refuses a
  parameter by name (also ``stop``, ``temperature``, ``seed``) gets requests without it;
- token usage and latency per sample go to the samples log (``mera_api``), totals per task and
  the video mode used to the results' ``config.mera_api``;
- works without ``--apply_chat_template`` too (the prompt becomes one user message).
"""

from __future__ import annotations

import copy
import importlib
import logging
from functools import partial
from typing import Any

from tqdm import tqdm

from lm_eval_patches.cache.caching_lm import report_answer
from lm_eval_patches.failures import (
    FAILED_ANSWER,
    FAILURES,
    build_failure_answer,
    failed_at_build,
)
from lm_eval_patches.messages import MessageError, RenderOptions, render_messages
from lm_eval_patches.models import api_usage, local_requests
from lm_eval_patches.models.api_transport import Client, RetryPolicy
from lm_eval_patches.models.local_requests import doc_label, optional_int
from lm_eval_patches.registration import import_upstream
from lm_eval_patches.settings import RUN_OPTIONS

log = logging.getLogger(__name__)

_UPSTREAM = "lm_eval.models.openai_completions"
LocalChatCompletion = import_upstream(
    ("local-chat-completions", "openai-chat-completions"), _UPSTREAM, "LocalChatCompletion"
)
OpenAIChatCompletion = importlib.import_module(_UPSTREAM).OpenAIChatCompletion

_ARGS = "chat-completions backend"  # how integer-arg errors name these backends
MAX_TOKENS_FIELDS = ("auto", "both", "max_tokens", "max_completion_tokens")


class MeraChatAPIMixin:
    """What both chat backends add to upstream's (see the module docstring)."""

    MULTIMODAL = True
    DEFAULT_MAX_TOKENS_FIELD = "both"

    def __init__(
        self,
        *args: Any,
        media_dialect: str = "vllm",
        image_width: int | str | None = None,
        image_height: int | str | None = None,
        image_max_side: int | str | None = None,
        video_frames: int | str | None = None,
        max_tokens_field: str = "auto",
        max_retries: int | str = 5,
        retry_backoff: float | str = 1.0,
        retry_max_wait: float | str = 60.0,
        **kwargs: Any,
    ) -> None:
        self.render_options = RenderOptions(
            dialect=str(media_dialect),
            image_width=optional_int(_ARGS, "image_width", image_width),
            image_height=optional_int(_ARGS, "image_height", image_height),
            image_max_side=optional_int(
                "chat-completions backend", "image_max_side", image_max_side
            ),
            video_frames=optional_int(_ARGS, "video_frames", video_frames),
        )
        if max_tokens_field not in MAX_TOKENS_FIELDS:
            raise ValueError(f"max_tokens_field must be one of {', '.join(MAX_TOKENS_FIELDS)}")
        if max_tokens_field == "auto":
            max_tokens_field = self.DEFAULT_MAX_TOKENS_FIELD
        self.max_tokens_field = max_tokens_field
        super().__init__(*args, max_retries=int(max_retries), **kwargs)
        self.client = Client(
            url=str(self.base_url),
            headers={},
            concurrency=self._concurrent,
            policy=RetryPolicy(
                attempts=self.max_retries,
                backoff_s=float(retry_backoff),
                max_wait_s=float(retry_max_wait),
                timeout_s=float(self.timeout),
            ),
        )
        api_usage.reset()
        api_usage.install_samples_hook()

    # -- payloads ------------------------------------------------------------------------------
    @property
    def video_mode(self) -> str:
        """How videos reach the server: ``native`` (video_url) or ``frames:N``."""
        frames = RUN_OPTIONS.replace_videos_with_images_amount
        if frames:
            return f"frames:{frames} (--replace_videos_with_images_amount)"
        return self.render_options.video_mode

    def request_messages(self, request: Any) -> list[dict]:
        """The neutral chat messages of one lm-eval request (MessageError if malformed)."""
        messages, _ = local_requests.request_messages(request)
        return messages

    def build_payload(self, messages: list[dict], gen_kwargs: dict) -> dict:
        """The JSON body for one request (media rendered now, in the dialect asked for)."""
        rendered = render_messages(messages, self.render_options)
        payload = self._create_payload(
            rendered,
            generate=True,
            gen_kwargs=copy.deepcopy(gen_kwargs),
            seed=self._seed,
            eos=self.eos_string,
        )
        limit = payload.pop("max_completion_tokens", None)
        limit = payload.pop("max_tokens", limit)
        if self.max_tokens_field in ("both", "max_tokens"):
            payload["max_tokens"] = limit
        if self.max_tokens_field in ("both", "max_completion_tokens"):
            payload["max_completion_tokens"] = limit
        return payload

    # -- requests ------------------------------------------------------------------------------
    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        """Answers in request order; failed requests get the failure answer with a reason."""
        answers: list[str] = [FAILED_ANSWER] * len(requests)
        pending: list[tuple[int, Any]] = []
        makers = []
        for index, request in enumerate(requests):
            if failed_at_build(request.args):  # the task already recorded why
                answers[index] = build_failure_answer(request.args)
                continue
            try:
                messages = self.request_messages(request)
            except MessageError as err:
                answers[index] = FAILURES.record(request.task_name, doc_label(request), str(err))
                api_usage.record(request.task_name, request.doc_id, {"failed": str(err)})
                continue
            pending.append((index, request))
            makers.append(partial(self.build_payload, messages, request.args[1]))
        self.client.headers = dict(self.header)
        self.client.url = str(self.base_url)
        with tqdm(
            total=len(makers), desc="Requesting API", disable=disable_tqdm or not makers
        ) as progress:

            def finish(position: int, outcome: Any) -> None:
                # Each answer is made (and reported to the request cache) as it arrives.
                index, request = pending[position]
                answers[index] = self._answer(request, outcome)

            self.client.post_all(makers, progress, on_done=finish)
        return answers

    def _answer(self, request: Any, outcome: Any) -> str:
        usage = (outcome.response or {}).get("usage") or {}
        entry = {
            "latency_s": round(outcome.latency_s, 4) if outcome.latency_s is not None else None,
            "attempts": outcome.attempts,
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "failed": outcome.reason,
        }
        api_usage.record(request.task_name, request.doc_id, entry)
        if outcome.reason is not None:
            reason = f"{self.base_url}: {outcome.reason}"
            return FAILURES.record(request.task_name, doc_label(request), reason)
        (text, *_) = self.parse_generations(outputs=outcome.response) or [None]
        if text is None:
            log.warning(
                "task %s, doc %s: the server returned no content",
                request.task_name,
                doc_label(request),
            )
            text = ""
        report_answer(self, "generate_until", request, text)
        return text

    # -- results -------------------------------------------------------------------------------
    def get_model_info(self) -> dict:
        """Goes into the results' ``config``: media handling and usage totals per task."""
        pass_mode = RUN_OPTIONS.pass_multimodal_args_to_chat_history
        return {
            "mera_api": {
                "base_url": self.base_url,
                "media_dialect": self.render_options.dialect,
                "video_mode": self.video_mode,
                "pass_multimodal_args_to_chat_history": pass_mode,
                "max_tokens_field": self.max_tokens_field,
                "refused_params": sorted(self.client.dropped),
                "tasks": api_usage.totals(),
            }
        }


class MeraLocalChatCompletion(MeraChatAPIMixin, LocalChatCompletion):
    """``local-chat-completions``: any OpenAI-compatible server (vLLM, SGLang, ours)."""

    DEFAULT_MAX_TOKENS_FIELD = "both"


class MeraOpenAIChatCompletion(MeraChatAPIMixin, OpenAIChatCompletion):
    """``openai-chat-completions``: OpenAI's API or a server standing in for it (needs
    ``OPENAI_API_KEY``)."""

    DEFAULT_MAX_TOKENS_FIELD = "max_completion_tokens"

    def _create_payload(self, messages: list[dict], **kwargs: Any) -> dict:
        # Upstream's own override drops `stop` and forces temperature 1 for any model name with
        # "5" or "o1" in it (Qwen2.5-VL included); a refused parameter is handled by name instead.
        return LocalChatCompletion._create_payload(self, messages, **kwargs)
