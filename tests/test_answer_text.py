"""Numbers and reasoning blocks in replies (``lm_eval_patches.answer_text``, read through the
one answer extractor and ``exact_match_norm``); letters and labelled answers are in
``test_answers.py``."""

from __future__ import annotations

import pytest
from test_answers import ABCD, _norm

from lm_eval_patches.answers import (
    DEFAULT_REASONING_DELIMITERS,
    extract_answer,
    extract_number,
    normalize_text,
    parse_number,
    strip_reasoning,
)
from lm_eval_patches.metrics import em_normalized
from lm_eval_patches.tasks.scoring import ScoringOptions, score_doc


# ------------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    ("reply", "gold", "expected"),
    [
        ("-5", "5", 0),
        ("5", "-5", 0),
        ("−5", "-5", 1),  # U+2212 minus
        ("–5", "-5", 1),  # en dash typed as a minus
        ("+5", "5", 1),
        ("5,0", "5", 1),
        ("3,5", "3.5", 1),
        ("3.50", "3,5", 1),
        ("1 000", "1000", 1),
        ("1\u00a0000\u00a0000", "1000000", 1),
        ("1,000,000", "1000000", 1),
        ("12", "1 2", 0),
        ("Ответ: 192", "192", 1),
        ("Ответ: -12", "-12", 1),
        ("Ответ — 12", "-12", 0),
        ("Площадь равна 192 см².", "192", 1),
        ("192.", "192", 1),
        ("\\boxed{72}", "72", 1),
        ("72 или 73", "72", 0),
        ("0", "0", 1),
        ("5-6", "5", 0),
        ("COVID-19", "19", 0),
        ("пять", "5", 0),
    ],
)
def test_numbers_compare_as_numbers(reply: str, gold: str, expected: int) -> None:
    assert _norm(reply, gold, []) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [("-5", "-5"), ("−5,25", "-5.25"), ("1 000,5", "1000.5"), ("1.000.000", "1000000")]
    + [("1,000.5", "1000.5"), ("+0", "0"), ("-0", "0"), ("5.", "5"), ("abc", None), ("5 6", None)],
)
def test_parse_number(text: str, value: str | None) -> None:
    parsed = parse_number(text)
    assert (None if parsed is None else str(extract_number(text))) == value


def test_normalize_text_keeps_signs() -> None:
    assert normalize_text("Температура −5,0 °C!") == "температура -5 °c"
    assert normalize_text("-5") != normalize_text("5")
    assert em_normalized("минус: -5 градусов", "-5 градусов") == 0  # text, not a label
    assert em_normalized("Ответ: -5 градусов", "-5 градусов") == 1
    assert em_normalized("Ответ: 5 градусов", "-5 градусов") == 0


# ----------------------------------------------------------------------------- reasoning
@pytest.mark.parametrize(("opening", "closing"), DEFAULT_REASONING_DELIMITERS)
def test_each_default_reasoning_block_is_removed(opening: str, closing: str) -> None:
    reply = f"{opening}Ответ: A? Или D? Сравню варианты A и D.{closing}\nОтвет: C"
    assert strip_reasoning(reply) == "Ответ: C"
    assert _norm(reply, "C", ABCD) == 1
    assert _norm(reply, "A", ABCD) == 0


@pytest.mark.parametrize(
    ("reply", "left"),
    [
        ("Думаю об A.</think>\n\nB", "B"),  # the template put <think> into the prompt
        ("<think>Ответ: A, хотя", ""),  # cut off while reasoning
        ("<THINK>A</THINK>B", "B"),  # markers match case-insensitively
        ("<think>A</think>B<think>C</think>", "B"),
        ("B", "B"),
    ],
)
def test_reasoning_edge_forms(reply: str, left: str) -> None:
    assert strip_reasoning(reply) == left


def test_reply_that_is_only_reasoning_has_no_answer() -> None:
    found = extract_answer("<think>Ответ: A</think>", labels=ABCD)
    assert found.value is None and found.reason == "nothing after the reasoning"
    assert _norm("<think>Ответ: A", "A", ABCD) == 0


def test_reasoning_delimiters_are_a_task_option() -> None:
    reply = "<plan>Ответ: A</plan>B"
    assert _norm(reply, "A", ABCD) == 1  # <plan> is not a default delimiter
    assert _norm(reply, "B", ABCD, reasoning_delimiters=[["<plan>", "</plan>"]]) == 1
    # An empty list keeps reasoning: the labelled A inside <think> is read.
    assert _norm("<think>Ответ: A</think>", "A", ABCD, reasoning_delimiters=[]) == 1
    with pytest.raises(ValueError, match="pairs"):
        ScoringOptions.from_dict({"reasoning_delimiters": [["<plan>"]]})


def test_bad_reasoning_option_names_the_task() -> None:
    from lm_eval_patches.tasks.task import MeraTask

    mera = {"scoring": {"reasoning_delimiters": "<think>"}}
    with pytest.raises(ValueError, match="task t: mera.scoring: reasoning delimiters"):
        MeraTask(config={"task": "t", "dataset_path": "x", "mera": mera})


def test_free_form_and_slun_replies_lose_their_reasoning() -> None:
    assert em_normalized("<think>может, нет?</think>Да.", ["да"]) == 1
    assert em_normalized("На фото кошка.\nОтвет: кошка", "кошка") == 1
    slun = ScoringOptions(kind="slun")
    doc = {"outputs": "{'intent': 'PlayMusic', 'slots': []}"}
    reply = '<think>{"intent": "GetWeather"}</think>{"intent": "PlayMusic", "slots": []}'
    assert score_doc(slun, doc, reply) == {"intent_em": 1.0, "slot_f1": 1.0}
