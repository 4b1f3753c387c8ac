"""Pure metric helpers for the MERA Multi tasks (stdlib only, no lm-eval imports).

Conventions: per-item helpers used by the task layer return ``None`` when the gold is
missing, and the aggregations below skip such items instead of counting them as wrong.
"""

from __future__ import annotations

import ast
import json
import math
import re
import string
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from typing import Any

from lm_eval_patches import answers

__all__ = [
    "em_parity",
    "normalize_answer",
    "extract_choice_letter",
    "em_normalized",
    "gold_is_missing",
    "parse_golds",
    "mean_of_scored",
    "group_all_correct",
    "extract_json_object",
    "parse_slun_reference",
    "slun_scores",
]

_ASCII_PUNCT_TABLE = str.maketrans("", "", string.punctuation)
_FENCE = re.compile(r"```[\w+.-]*[ \t]*\n?(.*?)```", re.DOTALL)
_JSON_LABEL = re.compile(r"^json\s*(?::\s*|\n\s*)", re.IGNORECASE)


def _as_list(golds: str | Iterable[str] | None) -> list[str]:
    if golds is None:
        return []
    if isinstance(golds, str):
        return [golds]
    return [str(g) for g in golds if g is not None]


# ---------------------------------------------------------------------------
# Exact match
# ---------------------------------------------------------------------------


def em_parity(
    prediction: str,
    golds: str | list[str],
    ignore_case: bool,
    ignore_punctuation: bool,
) -> int:
    """Exact match as the original harness computed it (no whitespace stripping)."""

    def prep(text: str) -> str:
        if ignore_case:
            text = text.lower()
        if ignore_punctuation:
            # Only ASCII punctuation, mirroring the original: «», — and … survive.
            text = text.translate(_ASCII_PUNCT_TABLE)
        return text

    pred = prep(prediction)
    return int(any(pred == prep(gold) for gold in _as_list(golds)))


def normalize_answer(text: str) -> str:
    """NFKC, lowercase, ё→е, canonical signed numbers, punctuation to spaces, spaces collapsed
    (``answers.normalize_text``)."""
    return answers.normalize_text(text)


def extract_choice_letter(text: str, letters: str) -> str | None:
    """The letter of ``letters`` a reply answers (``answers.extract_choice``; kept for callers
    written against the first API)."""
    return answers.extract_choice(text, list(letters))


def _is_single_letter(text: str) -> bool:
    stripped = text.strip()
    return len(stripped) == 1 and stripped.isalpha()


def em_normalized(
    prediction: str,
    golds: str | list[str],
    labels: list[str] | None = None,
    reasoning_delimiters: object = answers.DEFAULT_REASONING_DELIMITERS,
) -> int:
    """Normalised exact match: 1 when the answer a person reads in ``prediction`` is a gold.

    Choice golds (single letters, when the doc has option ``labels`` or, with ``labels=None``,
    when every gold is a letter) compare the option label ``answers.extract_choice`` reads
    against the gold's label (a Cyrillic gold by position: Б is option B). Numeric golds compare
    as numbers (sign, decimal comma, thousands spaces). Other golds compare normalised text
    (``answers.normalize_text``) with the reply as a whole, without a leading "Ответ:", or after
    its last answer label. Reasoning blocks are removed first (``answers.strip_reasoning``).
    """
    gold_list = [g.strip() for g in parse_golds(golds) if g.strip()]
    if not gold_list:
        return 0
    is_choice = all(_is_single_letter(g) for g in gold_list) and labels != []
    if is_choice:
        options = list(labels or answers.LATIN_LETTERING)
        gold_labels = set()
        for gold in gold_list:
            mapped = answers.letter_to_label(gold, options, prefer="position")
            if mapped is None:  # a gold outside the doc's options: still let it be answered
                options.append(mapped := gold.upper())
            gold_labels.add(mapped)
        picked = answers.extract_answer(
            prediction, labels=options, kind="choice", reasoning_delimiters=reasoning_delimiters
        )
        return int(picked.value in gold_labels)
    text = answers.reply_text(prediction, reasoning_delimiters)
    number = answers.extract_answer(text, kind="number", reasoning_delimiters=None).value
    number_value = None if number is None else answers.parse_number(number)
    candidates = answers.text_candidates(text)
    for gold in gold_list:
        gold_number = answers.parse_number(gold)
        if gold_number is not None:
            if number_value == gold_number:
                return 1
        elif answers.normalize_text(gold) in candidates:
            return 1
    return 0


# ---------------------------------------------------------------------------
# Golds and aggregation
# ---------------------------------------------------------------------------


def parse_golds(value: Any) -> list[str]:
    """Return acceptable answers from a str, a list, or a string holding a list repr."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    if not isinstance(value, str):
        return [str(value)]
    stripped = value.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            parsed = ast.literal_eval(stripped)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return [value]
        if isinstance(parsed, (list, tuple)):
            return [str(v) for v in parsed if v is not None]
    return [value]


def gold_is_missing(golds: Any) -> bool:
    """True for None, NaN, "", [] or a list whose items are all empty."""
    if golds is None or (isinstance(golds, float) and math.isnan(golds)):
        return True
    return all(not g.strip() for g in parse_golds(golds))


def mean_of_scored(items: list[float | None]) -> float:
    """Mean over items that were scored; ``None`` (missing gold) is skipped."""
    scored = [float(x) for x in items if x is not None]
    return sum(scored) / len(scored) if scored else float("nan")


def group_all_correct(items: list[tuple[Hashable, int | None]]) -> float:
    """Share of groups whose scored items are all correct (groups of only None drop out)."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for group_id, correct in items:
        if correct is not None:
            groups[group_id].append(int(correct))
    if not groups:
        return float("nan")
    return sum(all(v == 1 for v in vals) for vals in groups.values()) / len(groups)


# ---------------------------------------------------------------------------
# ruSLUn (JSON intent + slots)
# ---------------------------------------------------------------------------


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _first_braced(text: str) -> str | None:
    """First balanced {...} substring, ignoring braces inside quoted strings."""
    start = text.find("{")
    if start < 0:
        return None
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def _unwrap_reply(text: str) -> str:
    """Remove code fences, backticks, a "json" label and outer quotes around a reply."""
    s = text.strip()
    fence = _FENCE.search(s)
    if fence:
        s = fence.group(1).strip()
    elif s.startswith("```"):
        # Unclosed fence (truncated generation): drop the opening line.
        s = s.split("\n", 1)[1] if "\n" in s else s.lstrip("`")
    s = s.strip().strip("`").strip()
    s = _JSON_LABEL.sub("", s, count=1).strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        unquoted = _literal(s)
        s = unquoted if isinstance(unquoted, str) else s[1:-1]
    return s.strip()


def extract_json_object(text: str) -> object | None:
    """Best-effort parse of the JSON (or Python-repr) value in a model reply."""
    if not isinstance(text, str) or not text.strip():
        return None
    s = _unwrap_reply(text)
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        pass
    braced = _first_braced(s)
    if braced is not None:
        try:
            return json.loads(braced)
        except (ValueError, RecursionError):
            parsed = _literal(braced)
            if parsed is not None:
                return parsed
    return _literal(s)


def parse_slun_reference(text: str) -> dict | None:
    """Parse a gold ruSLUn annotation written as JSON or as a Python dict repr."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        parsed: Any = json.loads(text)
    except (ValueError, RecursionError):
        # literal_eval keeps apostrophes inside values ("Guns N' Roses") intact.
        parsed = _literal(text.strip())
    if not isinstance(parsed, dict):
        parsed = extract_json_object(text)
    return parsed if isinstance(parsed, dict) else None


def _norm(value: Any) -> str:
    return "" if value is None else str(value).strip().lower()


def _get_ci(data: dict, key: str) -> Any:
    """Dict lookup that tolerates "Intent"/"SLOTS" style key casing."""
    if key in data:
        return data[key]
    for k, v in data.items():
        if isinstance(k, str) and k.strip().lower() == key:
            return v
    return None


def _slot_pairs(slots: Any) -> Counter[tuple[str, str]]:
    """Multiset of normalised (type, value) pairs; malformed entries are ignored."""
    scalar = (str, int, float, bool)
    pairs: Counter[tuple[str, str]] = Counter()
    if isinstance(slots, dict):
        entries: list[Any] = [slots]
    elif isinstance(slots, (list, tuple)):
        entries = list(slots)
    else:
        return pairs
    for entry in entries:
        if isinstance(entry, dict):
            kvs = list(entry.items())
        elif isinstance(entry, (list, tuple)) and len(entry) == 2:
            kvs = [tuple(entry)]
        else:
            continue
        for key, value in kvs:
            if isinstance(key, scalar) and isinstance(value, scalar):
                pairs[(_norm(key), _norm(value))] += 1
    return pairs


def slun_scores(prediction: str, reference: str) -> dict[str, float | None]:
    """Intent exact match and slot F1 for one ruSLUn item (None values: gold missing)."""
    ref = parse_slun_reference(reference)
    if ref is None:
        return {"intent_em": None, "slot_f1": None}
    pred = extract_json_object(prediction)
    if not isinstance(pred, dict):
        return {"intent_em": 0.0, "slot_f1": 0.0}
    intent_em = float(_norm(_get_ci(pred, "intent")) == _norm(_get_ci(ref, "intent")))
    pred_slots = _slot_pairs(_get_ci(pred, "slots"))
    ref_slots = _slot_pairs(_get_ci(ref, "slots"))
    n_pred, n_ref = sum(pred_slots.values()), sum(ref_slots.values())
    if n_pred == 0 and n_ref == 0:
        return {"intent_em": intent_em, "slot_f1": 1.0}
    tp = sum((pred_slots & ref_slots).values())
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"intent_em": intent_em, "slot_f1": f1}
