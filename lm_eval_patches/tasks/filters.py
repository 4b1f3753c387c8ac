"""lm-eval filters of the MERA tasks.

``mera_json_object`` (ruSLUn): keeps the JSON object text of each reply, with code fences,
backticks, a leading ``json`` label and outer quotes removed, and the case left alone. The
original lowercased replies before parsing, so CamelCase intents (RateBook, PlayMusic) could
never match their gold. Replies with no object are kept as cleaned text (they score 0).
"""

from __future__ import annotations

from collections.abc import Iterable

from lm_eval.api.filter import Filter
from lm_eval.api.registry import register_filter

from lm_eval_patches.metrics import _first_braced, _unwrap_reply


def json_object_text(reply: str) -> str:
    """The first balanced ``{...}`` of a reply once wrappers are gone (else the cleaned text)."""
    if not isinstance(reply, str):
        return ""
    cleaned = _unwrap_reply(reply)
    return _first_braced(cleaned) or cleaned


@register_filter("mera_json_object")
class JsonObjectFilter(Filter):
    """Per reply: :func:`json_object_text` (one list of replies per doc in, same shape out)."""

    def apply(self, resps: Iterable[list[str]], docs: list[dict]) -> list[list[str]]:
        return [[json_object_text(reply) for reply in replies] for replies in resps]
