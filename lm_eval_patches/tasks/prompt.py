"""Prompt filling and media placeholders.

MERA instructions are templates: text slots are ``{name}`` (filled from ``inputs``) and media
slots are ``<image>``, ``<audio>``, ``<video>`` or numbered ``<audio_1>``, ``<audio_2>``.
Filling replaces only the slots that name a text field, so literal braces in the text (LaTeX,
JSON schemas) survive, unlike the original's ``str.format``.

Only the template's own placeholders are media slots. Text filled in from ``inputs`` (a question
about the HTML tag ``<image>``) keeps its words, but every placeholder-shaped run in it gets an
invisible WORD JOINER (U+2060) after its ``<``, so that no consumer of the prompt (ours, upstream
lm-eval's ``<image>`` splitting, an API server's template) can take it for a slot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER_RE = re.compile(r"<(image|audio|video)(?:_(\d+))?>")
_SLOT_RE = re.compile(r"\{(\w+)\}")
# Anything a consumer might read as a media slot, including "<image_3>" or "< Video >".
_LITERAL_SLOT_RE = re.compile(r"<(\s*(?:image|audio|video)(?:_\d+)?\s*>)", re.IGNORECASE)
WORD_JOINER = "\u2060"
# The slot and punctuation that only closed it ("беседы: <context>. Далее" -> "беседы: Далее").
_CONTEXT_RE = re.compile(r"\s*(?:<context>|\{context\})[.,;]?")


def fill_instruction(instruction: str, inputs: Mapping[str, Any], media: Mapping[str, str]) -> str:
    """Fill ``{field}`` slots with text inputs; other braces and media slots stay as they are."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name in inputs and name not in media:
            value = inputs[name]
            return "" if value is None else escape_media_slots(str(value))
        return match.group(0)

    return _SLOT_RE.sub(replace, instruction)


def escape_media_slots(text: str) -> str:
    """``text`` with every placeholder-shaped ``<image>``/``<audio_N>``/``<video>`` made literal
    (a WORD JOINER after ``<``): text from a record is never a media slot."""
    return _LITERAL_SLOT_RE.sub("<" + WORD_JOINER + r"\1", text)


def drop_context_slot(text: str) -> str:
    """Remove a dialogue-history slot (``<context>``/``{context}``) from a no-history prompt."""
    return _CONTEXT_RE.sub("", text)


def drop_media_slots(text: str, fields: list[str], kinds: Mapping[str, str]) -> str:
    """Remove the placeholders of absent optional media (e.g. a ruTiE turn with no picture)."""
    for name in fields:
        if name in kinds:
            # The field's own slot (<audio_2>) or, for an unnumbered field, its kind's (<image>).
            text = re.sub(r"\s?" + re.escape(f"<{name}>"), "", text, count=1)
    return text


def expand_video_slots(text: str, frames: int) -> str:
    """Each ``<video>`` slot becomes ``frames`` image slots (for image-only backends)."""
    return re.sub(r"<video(?:_\d+)?>", lambda _: "".join(["<image>"] * frames), text)


def placeholders(text: str) -> list[tuple[str, int | None]]:
    """The media placeholders of ``text`` in order, as (kind, number or None)."""
    return [
        (m.group(1), int(m.group(2)) if m.group(2) else None) for m in PLACEHOLDER_RE.finditer(text)
    ]


def order_fields_by_placeholders(
    text: str, present: Mapping[str, str]
) -> tuple[list[str], str | None]:
    """Media field names in placeholder order; second item is an error message or None.

    ``present`` maps the doc's media fields that hold media to their kind, in field order.
    ``<kind_N>`` takes field ``kind_N``; a bare ``<kind>`` takes the next unused field of that kind.
    """
    ordered: list[str] = []
    unused = [name for name in present]
    for kind, number in placeholders(text):
        name = (
            f"{kind}_{number}"
            if number is not None
            else next((n for n in unused if present[n] == kind), None)
        )
        if name is None or name not in unused:
            counts = _count(present.values())
            return ordered, (
                f"the prompt has more <{kind}> placeholders than {kind} media "
                f"(media present: {counts or 'none'})"
            )
        unused.remove(name)
        ordered.append(name)
    if unused:
        return ordered, (
            f"media field(s) {', '.join('inputs.' + n for n in unused)} have no placeholder "
            "in the prompt"
        )
    return ordered, None


def _count(kinds) -> str:
    tally: dict[str, int] = {}
    for kind in kinds:
        tally[kind] = tally.get(kind, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in tally.items())
