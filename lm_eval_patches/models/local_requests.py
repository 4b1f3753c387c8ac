"""What every backend does with a MERA request before its model (or server) sees it.

- :func:`request_messages`: a request (plain prompt, lm-eval chat JSON, or pass-mode chat
  history) with its media, as the neutral chat structure of :mod:`lm_eval_patches.messages`;
- :class:`GenSettings`: lm-eval's ``gen_kwargs`` as generation settings, greedy unless
  ``do_sample`` is truthy (the original enabled sampling whenever the key was present, B17),
  generation length from ``max_gen_toks`` (never a fixed number, B18);
- :func:`cut_at_stop`: a reply cut at the first stop sequence, as lm-eval's HF backends do;
- :func:`doc_label` and :func:`optional_int`: how failures name a doc, and integer model args.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lm_eval.api.instance import Instance

from lm_eval_patches.errors import SettingsError
from lm_eval_patches.messages import MessageError, build_messages

# Settings that only make sense when sampling; dropped for greedy decoding so transformers
# does not warn about (or act on) them.
_SAMPLING_ONLY = ("temperature", "top_p", "top_k", "min_p", "typical_p")


def optional_int(backend: str, name: str, value: Any) -> int | None:
    """A model arg as int or None (the CLI may hand over "None", "" or "20").

    Raises:
        SettingsError: the value is not an integer, naming the backend and the arg.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SettingsError(
            f"{backend} --model_args: {name} must be an integer, got {value!r}"
        ) from None


def doc_label(request: Instance) -> str:
    """How failures name a request's doc: its ``meta.id``, else lm-eval's doc index."""
    doc = request.doc if isinstance(request.doc, dict) else {}
    meta = doc.get("meta") or {}
    return str(meta.get("id", request.doc_id))


def chat_history_of(context: Any) -> tuple[str | list[dict], bool]:
    """``(prompt, is_chat)``: lm-eval's context as text or a chat history.

    A context is one of: plain text (no ``--apply_chat_template``), lm-eval's ``JsonChatStr``
    (what our backends' ``apply_chat_template`` returns: the history as JSON), or a list of
    messages (pass mode, ``--pass_multimodal_args_to_chat_history``).
    """
    if isinstance(context, str):
        return context, False
    prompt = getattr(context, "prompt", None)
    if isinstance(prompt, str):
        return json.loads(prompt), True
    if isinstance(context, Sequence):
        return [dict(m) for m in context], True
    raise MessageError(f"cannot use a request context of type {type(context).__name__}")


def request_messages(request: Instance) -> tuple[list[dict], bool]:
    """``(messages, is_chat)`` of one request, every medium at its placeholder.

    Raises:
        MessageError: placeholders and media disagree, or a medium has an unusable form
            (naming the task and doc).
    """
    context = request.args[0]
    media = request.args[2] if len(request.args) > 2 else None
    prompt, is_chat = chat_history_of(context)
    messages = build_messages(prompt, media or None, task=request.task_name, doc=doc_label(request))
    return messages, is_chat


@dataclass
class GenSettings:
    """Generation settings of one group of requests.

    Attributes:
        until: stop sequences (the reply is cut at the first one found).
        max_new_tokens: from ``max_gen_toks`` (else the backend's default).
        do_sample: True only when ``do_sample`` is truthy.
        extra: other ``gen_kwargs`` passed to the model's ``generate`` as they are; sampling
            knobs (temperature, top_p, ...) only when sampling.
    """

    until: list[str]
    max_new_tokens: int
    do_sample: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_gen_kwargs(cls, gen_kwargs: Mapping[str, Any] | None, default_max: int) -> GenSettings:
        """Parse lm-eval's ``gen_kwargs``; SettingsError for a malformed ``until``."""
        kwargs = dict(gen_kwargs or {})
        until = kwargs.pop("until", None) or []
        if isinstance(until, str):
            until = [until]
        if not isinstance(until, list) or not all(isinstance(u, str) for u in until):
            raise SettingsError(f"gen_kwargs: until must be a string or a list, got {until!r}")
        max_new = int(kwargs.pop("max_gen_toks", None) or default_max)
        kwargs.pop("max_new_tokens", None)  # max_gen_toks is lm-eval's name for it
        do_sample = bool(kwargs.pop("do_sample", False))
        if not do_sample:
            for name in _SAMPLING_ONLY:
                kwargs.pop(name, None)
        return cls(until=list(until), max_new_tokens=max_new, do_sample=do_sample, extra=kwargs)

    def key(self) -> str:
        """Requests with equal keys can share a batch."""
        return json.dumps(
            [self.until, self.max_new_tokens, self.do_sample, self.extra],
            sort_keys=True,
            default=str,
        )


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop sequence."""
    for stop in until:
        if stop:
            text = text.split(stop, 1)[0]
    return text
