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
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from typing import Any

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

LATIN_LETTERS = "ABCDEFGHIJ"
CYRILLIC_LETTERS = "АБВГДЕЖЗИК"

# Uppercase Latin <-> Cyrillic pairs that look identical; models often mix the scripts.
_LOOKALIKE_PAIRS = "AА BВ CС EЕ HН KК MМ OО PР TТ XХ"
_LOOKALIKE: dict[str, str] = {}
for _lat, _cyr in _LOOKALIKE_PAIRS.split():
    _LOOKALIKE[_lat] = _cyr
    _LOOKALIKE[_cyr] = _lat

# Quote-like symbols that are not in Unicode category P (modifier letters / symbols).
_QUOTE_SYMBOLS = frozenset("`´˝ˊˋʹʺʻʼ")
_ASCII_PUNCT_TABLE = str.maketrans("", "", string.punctuation)
_ANSWER_LABEL = re.compile(r"^\s*(?:ответ|answer)\b[\s:.\-–—=>]*", re.IGNORECASE)
_NORMALIZED_LABEL = re.compile(r"^(?:ответ|answer)\s+")
_LETTER_TOKEN = re.compile(r"[^\W\d_]+")
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
    """NFKC, lowercase, ё→е, drop Unicode punctuation and quote marks, collapse spaces."""
    # Quote symbols go first: NFKC would turn "´" into a space plus a combining accent.
    text = "".join(" " if ch in _QUOTE_SYMBOLS else ch for ch in text)
    text = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    # Punctuation becomes a space (not nothing) so "да,нет" and "да, нет" agree.
    chars = [" " if unicodedata.category(ch).startswith("P") else ch for ch in text]
    return " ".join("".join(chars).split())


def _resolve_letter(char: str, letters: str) -> str | None:
    """Map one character to an allowed letter, directly or via its look-alike."""
    upper_letters = letters.upper()
    char = char.upper()
    for candidate in (char, _LOOKALIKE.get(char)):
        if candidate and candidate in upper_letters:
            return letters[upper_letters.index(candidate)]
    return None


def extract_choice_letter(text: str, letters: str) -> str | None:
    """Pull a single answer letter (spelled as in ``letters``) out of a model reply.

    (a) strip and drop a leading "Ответ"/"Answer" label; (b) if only one letter is
    left once punctuation, brackets and spaces are removed, map it (case-insensitive,
    Latin/Cyrillic look-alikes accepted); (c) otherwise accept the reply when it holds
    exactly one distinct standalone uppercase letter token from ``letters``. Lowercase
    tokens are skipped in (c) because they are usually words ("в", "с", "a").
    """
    if not text or not letters:
        return None
    body = _ANSWER_LABEL.sub("", text.strip(), count=1)
    core = "".join(ch for ch in body if ch.isalnum())
    if len(core) == 1:
        return _resolve_letter(core, letters) if core.isalpha() else None
    found = {
        _resolve_letter(tok, letters)
        for tok in _LETTER_TOKEN.findall(body)
        if len(tok) == 1 and tok.isupper()
    }
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def _is_single_letter(text: str) -> bool:
    stripped = text.strip()
    return len(stripped) == 1 and stripped.isalpha()


def em_normalized(prediction: str, golds: str | list[str]) -> int:
    """Lenient exact match: letter extraction for choice golds, normalisation otherwise."""
    gold_list = [g for g in parse_golds(golds) if g.strip()]
    if not gold_list:
        return 0
    if all(_is_single_letter(g) for g in gold_list):
        gold_letters = [g.strip().upper() for g in gold_list]
        is_latin = all(g.isascii() for g in gold_letters)
        alphabet = LATIN_LETTERS if is_latin else CYRILLIC_LETTERS
        # Make sure an unusual gold letter (e.g. "Z") is still extractable.
        alphabet += "".join(g for g in gold_letters if g not in alphabet)
        picked = extract_choice_letter(prediction, alphabet)
        return int(picked is not None and picked.upper() in gold_letters)
    pred = normalize_answer(prediction)
    pred_unlabelled = _NORMALIZED_LABEL.sub("", pred, count=1)
    for gold in gold_list:
        norm_gold = normalize_answer(gold)
        if norm_gold and norm_gold in (pred, pred_unlabelled):
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
