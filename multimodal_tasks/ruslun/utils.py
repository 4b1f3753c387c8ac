"""Prompt helper of the ruSLUn task.

ruSLUn instructions hold ``<audio>`` twice for one recording: once in the instruction
("...: <audio>") and once inside the ``question`` text that fills ``{question}``. One clip can
fill only one slot, so the first ``<audio>`` keeps the recording and later ones become the
plain word, which reads naturally in the sentence ("Прослушайте аудиозапись и ..."). Text from
``inputs`` is never a slot (``prompt.fill_instruction`` marks its ``<audio>`` as literal), so the
question's literal tag becomes that word too.
"""

from __future__ import annotations

import re

from lm_eval_patches.tasks.prompt import WORD_JOINER, fill_instruction

AUDIO_SLOT = re.compile(r"<audio>")
LITERAL_AUDIO = "<" + WORD_JOINER + "audio>"  # how a question's own "<audio>" comes out
AUDIO_WORD = "аудиозапись"


def _is_media(value: object) -> bool:
    # Media cells reach the prompt as descriptors ({kind, sha256, ...}), never as text.
    return isinstance(value, dict) and "kind" in value and "sha256" in value


def doc_to_text(doc: dict) -> str:
    """The filled instruction with one ``<audio>`` slot per recording the doc has."""
    inputs = doc.get("inputs") or {}
    media = {name: value["kind"] for name, value in inputs.items() if _is_media(value)}
    text = fill_instruction(doc["instruction"], inputs, media).replace(LITERAL_AUDIO, AUDIO_WORD)
    keep = sum(1 for kind in media.values() if kind == "audio")
    seen = 0

    def replace(match: re.Match) -> str:
        nonlocal seen
        seen += 1
        return match.group(0) if seen <= keep else AUDIO_WORD

    return AUDIO_SLOT.sub(replace, text)
