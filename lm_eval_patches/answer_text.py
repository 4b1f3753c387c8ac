"""Text-level helpers of the answer extractor: reasoning blocks, numbers, normalisation.

Pure Python, regexes compiled once. The public entry points are re-exported by
``lm_eval_patches.answers`` (import them from there).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

# (opening, closing) markers of the reasoning blocks that common reasoning models emit:
# DeepSeek-R1 / Qwen3 / QwQ (<think>), Claude-style and generic tags, OpenThoughts / Sky-T1
# (<|begin_of_thought|>), Kimi-VL (◁think▷), Magistral ([THINK]), Seed-OSS (<seed:think>).
DEFAULT_REASONING_DELIMITERS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("<reasoning>", "</reasoning>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
    ("◁think▷", "◁/think▷"),
    ("[THINK]", "[/THINK]"),
    ("<seed:think>", "</seed:think>"),
)

# Wrappers some models put around the final answer; the answer is what they enclose.
_ANSWER_WRAPPERS = (("<answer>", "</answer>"), ("<|begin_of_solution|>", "<|end_of_solution|>"))
_WRAPPED = [
    re.compile(re.escape(o) + r"(.*?)" + re.escape(c), re.DOTALL | re.IGNORECASE)
    for o, c in _ANSWER_WRAPPERS
]
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")

# Signs a number can carry: hyphen-minus, U+2212 minus, figure and en dashes, small and
# fullwidth hyphen-minus (NFKC folds the last two, but replies are not always NFKC).
_MINUS = "\u2212\u2012\u2013\ufe63\uff0d-"  # "-" last: literal in a character class
_SPACES = " \u00a0\u2009\u202f"
NUMBER = re.compile(
    rf"""
    (?<![\w.,])(?<!\w[{_MINUS}])                    # not glued to a word or another number
    (?P<sign>[+{_MINUS}])?
    (?P<int>
        \d{{1,3}}(?:[{_SPACES}]\d{{3}})+           # 1 000 000 (any space as thousands separator)
      | \d{{1,3}}(?:,\d{{3}}){{2,}}                 # 1,000,000
      | \d{{1,3}}(?:,\d{{3}})+(?=\.\d)             # 1,000.5
      | \d{{1,3}}(?:\.\d{{3}}){{2,}}                # 1.000.000
      | \d{{1,3}}(?:\.\d{{3}})+(?=,\d)             # 1.000,5
      | \d+
    )
    (?:[.,](?P<frac>\d+))?                         # one decimal separator: comma or point
    (?![\w])(?![.,]\d)(?![{_MINUS}]\d)             # nor followed by one (5-6 is a range)
    """,
    re.VERBOSE,
)


@lru_cache(maxsize=32)
def _reasoning_patterns(
    delimiters: tuple[tuple[str, str], ...],
) -> list[tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]]:
    out = []
    for opening, closing in delimiters:
        o, c = re.escape(opening), re.escape(closing)
        flags = re.DOTALL | re.IGNORECASE
        out.append(
            (
                re.compile(o + r".*?" + c, flags),  # a whole block
                re.compile(r"^.*" + c, flags),  # up to the last orphan closing marker
                re.compile(o + r".*\Z", flags),  # an unclosed block runs to the end
            )
        )
    return out


def _as_pairs(delimiters: object) -> tuple[tuple[str, str], ...]:
    pairs = []
    for pair in delimiters or ():  # type: ignore[union-attr]
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(p, str) and p for p in pair)
        ):
            raise ValueError(
                f"reasoning delimiters must be [opening, closing] pairs of non-empty strings, "
                f"got {pair!r}"
            )
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def strip_reasoning(
    reply: str,
    delimiters: object = DEFAULT_REASONING_DELIMITERS,
) -> str:
    """The reply without its reasoning blocks, stripped of surrounding whitespace.

    ``delimiters``: (opening, closing) marker pairs, matched case-insensitively; an empty
    sequence or None keeps the reply as it is. For each pair: every closed block is removed;
    text before an orphan closing marker is removed (chat templates such as DeepSeek-R1's and
    Qwen3's put the opening ``<think>`` into the prompt, so the reply holds only the closing
    one); an opening marker that is never closed (a reply cut off while reasoning) removes
    everything after it. Raises ValueError for malformed pairs.
    """
    text = reply or ""
    pairs = _as_pairs(delimiters)
    for (_, closing), (block, orphan_close, unclosed) in zip(
        pairs, _reasoning_patterns(pairs), strict=True
    ):
        if closing.lower() in text.lower():  # else only an unclosed block can be there
            text = block.sub(" ", text)
            text = orphan_close.sub("", text, count=1)
        text = unclosed.sub("", text, count=1)
    return text.strip()


def unwrap_answer(text: str) -> str:
    """The inside of the last ``<answer>…</answer>`` / solution block or ``\\boxed{…}``, if any."""
    for pattern in (*_WRAPPED, _BOXED):
        found = pattern.findall(text)
        if found:
            return found[-1].strip()
    return text


def number_value(match: re.Match[str]) -> Decimal:
    """The value of a ``NUMBER`` match (thousands separators dropped, comma or point decimal)."""
    digits = re.sub(r"\D", "", match.group("int"))
    frac = match.group("frac")
    value = Decimal(f"{digits}.{frac}" if frac else digits)
    return -value if match.group("sign") and match.group("sign") != "+" else value


def canonical_number(value: Decimal) -> str:
    """``Decimal("-5.50")`` -> ``"-5.5"``; ``-0`` -> ``"0"``; never exponent notation."""
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse_number(text: str) -> Decimal | None:
    """The number ``text`` is, or None when it is anything else.

    Accepted: a sign (``+``, ``-``, U+2212 minus, en/figure dash), a decimal comma or point,
    thousands separated by spaces (also no-break and thin spaces), or by commas/points when
    there are two groups or more or the other separator follows as the decimal one. A single
    ``1,000`` reads as one with three decimals (Russian decimal comma). Surrounding whitespace
    and one trailing full stop are allowed. Raises nothing.
    """
    stripped = (text or "").strip()
    stripped = stripped[:-1] if stripped.endswith(".") else stripped
    match = NUMBER.fullmatch(stripped)
    if match is None:
        return None
    try:
        return number_value(match)
    except InvalidOperation:  # pragma: no cover - the regex only lets digits through
        return None


# Quote-like symbols that are not in Unicode category P (modifier letters / symbols).
_QUOTE_SYMBOLS = frozenset("`´˝ˊˋʹʺʻʼ")


def _punctuation_to_space(text: str) -> str:
    return "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)


def normalize_text(text: str) -> str:
    """Text as compared by the normalised metric: NFKC, lowercase, ё→е, numbers written
    canonically (``−5,0`` -> ``-5``: the sign stays, it is not punctuation), every other
    Unicode punctuation and quote mark a space, whitespace collapsed."""
    # Quote symbols go first: NFKC would turn "´" into a space plus a combining accent.
    text = "".join(" " if ch in _QUOTE_SYMBOLS else ch for ch in text or "")
    text = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    parts, last = [], 0
    for match in NUMBER.finditer(text):
        # Punctuation becomes a space (not nothing) so "да,нет" and "да, нет" agree.
        parts.append(_punctuation_to_space(text[last : match.start()]))
        parts.append(f" {canonical_number(number_value(match))} ")
        last = match.end()
    parts.append(_punctuation_to_space(text[last:]))
    return " ".join("".join(parts).split())
