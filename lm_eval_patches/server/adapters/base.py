"""The adapter interface: a model family behind the server.

An adapter subclasses :class:`BaseModel` and implements the two documented methods (MERA's
server README names them; the original's code wanted ``_generate``, bug B31):

- ``init_model()``: load weights, processor, tokenizer into attributes (called once, by the
  constructor, with ``self.model_name`` and ``self.options`` set);
- ``generate(messages, params)``: answer one conversation. ``messages`` are the project's
  neutral chat structure (``lm_eval_patches.messages``): ``[{"role", "content": [part]}]`` with
  ``{"type": "text", "text"}`` and ``{"type": "image"|"audio"|"video", <kind>: MediaRef}``
  parts in the client's order; ``params`` are the request's sampling settings. Return a
  :class:`Generation` (or a plain string; its usage is then reported as zero).

Sampling settings arrive per request, so changing ``temperature`` or ``max_tokens`` never
reloads the model. Heavy imports (torch, transformers, family-specific utilities) belong inside
methods, so that listing or choosing adapters imports nothing heavy.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class SamplingParams:
    """One request's generation settings (OpenAI's names and meanings).

    ``temperature`` 0 means greedy decoding; ``max_tokens`` is the completion budget in tokens
    (the request's ``max_completion_tokens``, else ``max_tokens``, else the server default);
    ``stop`` strings end the answer and are not part of it; ``seed`` makes sampling repeatable.
    """

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Generation:
    """An answer: text, why it ended (``"stop"`` or ``"length"``), token counts."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0


class BaseModel(ABC):
    """A served model. Subclasses set ``name`` and implement ``init_model``/``generate``.

    ``options`` are the ``key=value`` model args of ``mera-mm serve --model-args`` (strings;
    adapters convert what they use). ``exclusive`` adapters run one request at a time (a local
    model on one device); a proxy sets it False and serves requests concurrently.
    """

    name: ClassVar[str] = ""
    exclusive: ClassVar[bool] = True

    def __init__(self, model_name: str, **options: Any) -> None:
        self.model_name = model_name
        self.options = dict(options)
        self.lock = threading.Lock()
        self.init_model()

    @abstractmethod
    def init_model(self) -> None:
        """Load everything the model needs; raise with a clear message when it cannot."""

    @abstractmethod
    def generate(self, messages: list[dict], params: SamplingParams) -> Generation | str:
        """Answer the conversation ``messages`` under ``params``."""

    def serve(self, messages: list[dict], params: SamplingParams) -> Generation:
        """What the app calls: ``generate`` (one at a time when ``exclusive``), stop strings
        applied to whatever the model returned, and a plain string wrapped."""
        if self.exclusive:
            with self.lock:
                result = self.generate(messages, params)
        else:
            result = self.generate(messages, params)
        if isinstance(result, str):
            result = Generation(result)
        return apply_stop(result, params.stop)

    def option(self, key: str, default: Any = None) -> Any:
        """A model arg, or ``default`` when absent."""
        return self.options.get(key, default)


def apply_stop(result: Generation, stop: list[str]) -> Generation:
    """Cut the text at the first stop string (OpenAI leaves the stop string out)."""
    cut = min((i for i in (result.text.find(s) for s in stop if s) if i >= 0), default=-1)
    if cut < 0:
        return result
    return Generation(result.text[:cut], "stop", result.prompt_tokens, result.completion_tokens)
