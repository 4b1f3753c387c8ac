"""THE answer extractor: what a person reading a model's reply would take as its answer.

Used by everything that reads answers out of replies: the normalised metric
(``exact_match_norm``), ruTiE's history feedback, the judge and the report. The parity metric
(``exact_match``) does not use it: it stays the original harness's raw comparison.

Rules (issue 6; MERA_SPEC §5.1 recommends a lenient EM beside the strict one):

* Reasoning blocks (``<think>…</think>`` and the other ``DEFAULT_REASONING_DELIMITERS``) are
  removed first; the raw reply stays in the samples log, only the reader strips.
* A choice answer is an option letter that *stands* as an answer, tried in this order: the whole
  reply ("B", "(B)", "**B**", "«B»."); a labelled letter, the last one winning ("Ответ: B",
  "answer is B", "правильный ответ — B", "Мой выбор: B", ``<answer>B</answer>``,
  ``\\boxed{B}``); the letter alone on a line; a leading "B." / "B)" / "(B) …"; a bold **B**;
  finally, in a short reply (at most ``SHORT_REPLY_WORDS`` words) the one capital letter that
  names an option. Letters elsewhere in longer replies are not answers, and one-letter words
  (Russian в с к и а о у я, English I and a) followed by a word are words, not letters.
* Candidates are the task's own option labels (``option_labels``), not a fixed A–J.
* Cyrillic letters (``letter_to_label``): MERA's data labels options A, B, C… in Latin, while
  ruTiE-Image stores golds as the Russian lettering А, Б, В, Г of the same *position*; golds
  are therefore read by position. In a reply a person cannot tell Cyrillic А/В/С/Е… from Latin
  A/B/C/E, and models slip between the scripts, so a reply letter that looks like a label is
  that label; any other Cyrillic letter (Б, Г, Д, Ж, З, И) is read by position.
* Numbers compare as numbers: the sign counts, U+2212 is a minus, comma or point decimals,
  space-separated thousands (``answer_text.parse_number``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lm_eval_patches.answer_text import (
    DEFAULT_REASONING_DELIMITERS,
    NUMBER,
    canonical_number,
    normalize_text,
    number_value,
    parse_number,
    strip_reasoning,
    unwrap_answer,
)

__all__ = [
    "DEFAULT_REASONING_DELIMITERS",
    "Extracted",
    "LATIN_LETTERING",
    "RUSSIAN_LETTERING",
    "SHORT_REPLY_WORDS",
    "extract_answer",
    "extract_choice",
    "extract_number",
    "letter_to_label",
    "normalize_text",
    "option_labels",
    "parse_number",
    "reply_text",
    "strip_reasoning",
    "strip_label",
    "text_candidates",
]

Kind = Literal["auto", "choice", "number", "text"]

# Option lettering in order: Latin, and the Russian one (Й is skipped, as in Russian lists).
LATIN_LETTERING = "ABCDEFGHIJ"
RUSSIAN_LETTERING = "АБВГДЕЖЗИК"
# Cyrillic capitals that look exactly like a Latin capital, and back.
_CYR_TO_LAT = dict(zip("АВЕКМНОРСТХ", "ABEKMHOPCTX", strict=True))
_LAT_TO_CYR = {lat: cyr for cyr, lat in _CYR_TO_LAT.items()}
# Letters that are also one-letter words; followed by a word they are that word.
_WORD_LETTERS = frozenset("вскиаоуяВСКИАОУЯIa")
# A longer reply needs a labelled, line, leading or bold answer to count.
SHORT_REPLY_WORDS = 12

_L = r"[^\W\d_]"  # one letter of any script
_LABEL = (
    rf"(?<!{_L})(?:ответ(?:ом)?|answer|(?:правильн|верн)\w*\s+вариант\w*"
    r"|(?:correct|right|best|final)\s+(?:option|choice|answer)|мой\s+выбор|my\s+choice"
    rf"|выбираю|i\s+(?:choose|pick|select))(?!{_L})"
)
# What may stand between a label and its answer: punctuation, markup and a few linking words.
_LINK = (
    r"(?:[\s:=>→*_(\[«\"'“`]|[\-–—](?!\d)|\bis\b|\bбудет\b|\bэто\b|\bвариант\b|\boption\b"
    r"|\bchoice\b|\bбуква\b|\bletter\b|\bпод\s+буквой\b)*"
)
_LABELLED_LETTER = re.compile(_LABEL + _LINK + rf"(?P<x>{_L})", re.IGNORECASE)
_LABELLED_NUMBER = re.compile(_LABEL + _LINK + r"(?=[+\-\u2212\u2012\u2013\d])", re.IGNORECASE)
_LABELLED_TEXT = re.compile(
    _LABEL + r"(?:[\s:=>→]|[\-–—](?!\d)|\bis\b|\bэто\b|\bбудет\b)*(?P<rest>[^\n]*)", re.IGNORECASE
)
_LEADING_LABEL = re.compile(
    rf"^\s*(?:ответ|answer)(?!{_L})(?:[\s:.=>]|[\-–—](?!\d))*", re.IGNORECASE
)
_ALONE = re.compile(rf"[\W_]*({_L})[\W_]*")
_LEADING = re.compile(rf"[\s*_(\[«\"'`]*({_L})[*_\]»\"'`]*\s*[.):](?!\w)")
_INITIAL = re.compile(rf"[\s*_]*{_L}\.")
_INITIALS = re.compile(rf"\.\s?{_L}\.")
_INITIAL_BEFORE = re.compile(rf"(?<!{_L}){_L}\.\s?$")
_BOLD = re.compile(rf"(\*\*|__)\s*({_L})\s*[.):]?\s*\1")
_WORD = re.compile(r"[^\W_]+")
_SINGLE = re.compile(rf"(?<![\w'’\-])({_L})(?![\w'’])")


@dataclass(frozen=True)
class Extracted:
    """What was read out of one reply.

    ``value``: the answer (an option label as the task spells it, a canonical number such as
    ``"-5.5"``, or normalised text), or None; ``method``: how it was found (``whole``,
    ``labelled``, ``line``, ``leading``, ``bold``, ``short``, ``text``, or ``none``);
    ``reason``: why nothing was found (None when a value was); ``text``: the reply with its
    reasoning removed, which is what was read.
    """

    value: str | None
    method: str
    reason: str | None = None
    text: str = ""

    @property
    def found(self) -> bool:
        return self.value is not None


def option_labels(inputs: dict | None) -> list[str]:
    """The option letters of a MERA doc: ``option_a`` … ``option_g`` with a non-empty value
    become ``["A", …, "G"]`` (the letters its prompt shows). Empty for free-form docs."""
    names = sorted(k for k in (inputs or {}) if k.startswith("option_"))
    return [n.removeprefix("option_").upper() for n in names if (inputs or {})[n] not in (None, "")]


def _position_twin(upper: str) -> str | None:
    pairs = ((RUSSIAN_LETTERING, LATIN_LETTERING), (LATIN_LETTERING, RUSSIAN_LETTERING))
    for source, target in pairs:
        if upper in source:
            return target[source.index(upper)]
    return None


def letter_to_label(
    letter: str, labels: list[str], *, prefer: Literal["lookalike", "position"] = "lookalike"
) -> str | None:
    """The option label (as spelled in ``labels``) that one letter means, or None.

    Case is ignored. A letter not among the labels is tried as its other-script twin:
    by look (Cyrillic В = Latin B) and by position (Б = 2nd = B, Г = D). ``prefer`` says which
    comes first: ``"lookalike"`` for replies (a reader sees B in "В"), ``"position"`` for golds
    (ruTiE-Image stores the gold of option B as "Б", so its "В" means C).
    """
    upper = {label.upper(): label for label in labels}
    char = letter.upper()
    look = _CYR_TO_LAT.get(char) or _LAT_TO_CYR.get(char)
    pos = _position_twin(char)
    order = (look, pos) if prefer == "lookalike" else (pos, look)
    for candidate in (char, *order):
        if candidate and candidate in upper:
            return upper[candidate]
    return None


def _stands(text: str, start: int) -> bool:
    """The letter at ``start`` is not part of a word, an abbreviation or a one-letter word."""
    end = start + 1
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "'’-_"):
        return False
    if start > 1 and text[start - 1] == "." and text[start - 2].isalpha():
        return False  # т.е.
    if _INITIALS.match(text, end) or (start > 1 and _INITIAL_BEFORE.search(text, 0, start)):
        return False  # В. И. Ленин
    after = text[end : end + 2]
    if after[:1].isalnum() or (after[:1] in "'’-." and after[1:2].isalpha()):
        return False
    return not (text[start] in _WORD_LETTERS and re.match(r"\s+[^\W\d_]", text[end:]))


def _one(found: list[str], method: str, text: str) -> Extracted | None:
    distinct = list(dict.fromkeys(found))
    if len(distinct) == 1:
        return Extracted(distinct[0], method, text=text)
    if distinct:
        return Extracted(None, "none", f"{method} answers disagree: {', '.join(distinct)}", text)
    return None


def _leading(line: str, label: Callable[[str], str | None]) -> str | None:
    """The option a line starts with as "B." / "B)" / "(B) …" (not an initial: "В. И.")."""
    lead = _LEADING.match(line)
    if lead is None or _INITIAL.match(line, lead.end()):
        return None
    return label(lead.group(1))


def _choice(text: str, labels: list[str]) -> Extracted:
    def label(ch: str) -> str | None:
        return letter_to_label(ch, labels)

    alone = _ALONE.fullmatch(text)
    if alone:
        value = label(alone.group(1))
        reason = None if value else f"{alone.group(1)!r} is not one of the options {labels}"
        return Extracted(value, "whole" if value else "none", reason, text)
    labelled = [
        value
        for m in _LABELLED_LETTER.finditer(text)
        if _stands(text, m.start("x")) and (value := label(m.group("x")))
    ]
    if labelled:
        return Extracted(labelled[-1], "labelled", text=text)  # a final answer comes last
    lines = [m.group(1) for ln in text.splitlines() if (m := _ALONE.fullmatch(ln))]
    found = _one([v for ch in lines if (v := label(ch))], "line", text)
    if found:
        return found
    if _leading(text.splitlines()[0], label):
        # "B. текст" counts unless other lines start with other options (an echoed list).
        found = _one([v for ln in text.splitlines() if (v := _leading(ln, label))], "leading", text)
        if found:
            return found
    found = _one([v for m in _BOLD.finditer(text) if (v := label(m.group(2)))], "bold", text)
    if found:
        return found
    if len(_WORD.findall(text)) > SHORT_REPLY_WORDS:
        return Extracted(None, "none", "no option letter stands as the answer", text)
    capitals = [
        v
        for m in _SINGLE.finditer(text)
        if m.group(1).isupper() and _stands(text, m.start(1)) and (v := label(m.group(1)))
    ]
    found = _one(capitals, "short", text)
    return found or Extracted(None, "none", "no option letter stands as the answer", text)


def _number(text: str) -> Extracted:
    whole = parse_number(strip_label(text).strip(" *_`'\"«»“”()[]"))
    if whole is not None:
        return Extracted(canonical_number(whole), "whole", text=text)
    labelled = [
        number_value(m)
        for lm in _LABELLED_NUMBER.finditer(text)
        if (m := NUMBER.match(text, lm.end()))
    ]
    if labelled:
        return Extracted(canonical_number(labelled[-1]), "labelled", text=text)
    lines = [parse_number(ln.strip(" *_`'\"«»")) for ln in text.splitlines()]
    found = _one([canonical_number(v) for v in lines if v is not None], "line", text)
    if found:
        return found
    if len(_WORD.findall(text)) > SHORT_REPLY_WORDS:
        return Extracted(None, "none", "no number stands as the answer", text)
    numbers = [canonical_number(number_value(m)) for m in NUMBER.finditer(text)]
    found = _one(numbers, "short", text)
    return found or Extracted(None, "none", "no number in the reply", text)


def strip_label(text: str) -> str:
    """``"Ответ: Москва"`` -> ``"Москва"`` (one leading "Ответ"/"Answer" label removed)."""
    return _LEADING_LABEL.sub("", text, count=1)


def text_candidates(text: str) -> list[str]:
    """Normalised readings of a free-form reply: as a whole, without a leading "Ответ:", and
    the rest of the line after its last answer label ("…\\nОтвет: кошка" -> "кошка")."""
    found = [normalize_text(text), normalize_text(strip_label(text))]
    labelled = list(_LABELLED_TEXT.finditer(text))
    if labelled:
        found.append(normalize_text(labelled[-1].group("rest")))
    return [t for t in dict.fromkeys(found) if t]


def reply_text(reply: str, reasoning_delimiters: object = DEFAULT_REASONING_DELIMITERS) -> str:
    """What is read of a reply: reasoning blocks removed, the inside of a final
    ``<answer>…</answer>`` or ``\\boxed{…}`` if there is one, whitespace stripped."""
    return unwrap_answer(strip_reasoning(reply or "", reasoning_delimiters))


def extract_answer(
    reply: str,
    *,
    labels: list[str] | None = None,
    kind: Kind = "auto",
    reasoning_delimiters: object = DEFAULT_REASONING_DELIMITERS,
) -> Extracted:
    """Read the answer out of one model reply.

    ``labels``: the task's own option labels (``option_labels(doc["inputs"])``); ``kind``:
    ``"choice"`` (an option label), ``"number"`` (a canonical number string), ``"text"``
    (normalised text) or ``"auto"`` (choice when there are labels, else text);
    ``reasoning_delimiters``: see ``strip_reasoning`` (None/empty: keep reasoning).
    Never raises on any reply; an empty or unreadable one gives ``value=None`` with a reason.
    """
    text = reply_text(reply, reasoning_delimiters)
    if not text:
        why = "empty reply" if not (reply or "").strip() else "nothing after the reasoning"
        return Extracted(None, "none", why, text)
    if kind == "auto":
        kind = "choice" if labels else "text"
    if kind == "choice":
        if not labels:
            return Extracted(None, "none", "no option labels given", text)
        return _choice(text, list(labels))
    if kind == "number":
        return _number(text)
    return Extracted(normalize_text(strip_label(text)) or None, "text", None, text)


def extract_choice(
    reply: str, labels: list[str], reasoning_delimiters: object = DEFAULT_REASONING_DELIMITERS
) -> str | None:
    """The option label a reply answers (see ``extract_answer``), or None."""
    return extract_answer(
        reply, labels=labels, kind="choice", reasoning_delimiters=reasoning_delimiters
    ).value


def extract_number(
    reply: str, reasoning_delimiters: object = DEFAULT_REASONING_DELIMITERS
) -> str | None:
    """The number a reply answers, written canonically (``"-5"``, ``"1000.5"``), or None."""
    return extract_answer(reply, kind="number", reasoning_delimiters=reasoning_delimiters).value
