"""Tests for the pure metric helpers in lm_eval_patches.metrics."""

from __future__ import annotations

import math

import pytest

from lm_eval_patches.metrics import (
    em_normalized,
    em_parity,
    extract_choice_letter,
    extract_json_object,
    gold_is_missing,
    group_all_correct,
    mean_of_scored,
    normalize_answer,
    parse_golds,
    parse_slun_reference,
    slun_scores,
)

# --------------------------------------------------------------------------- em_parity


@pytest.mark.parametrize(
    ("pred", "golds", "ic", "ip", "expected"),
    [
        ("Москва", "Москва", False, False, 1),
        ("москва", "Москва", False, False, 0),
        ("москва", "Москва", True, False, 1),
        ("Москва.", "Москва", True, True, 1),
        ("Москва!?", "москва", True, True, 1),
        # No whitespace stripping in parity mode.
        (" Москва", "Москва", True, True, 0),
        ("Москва\n", "Москва", True, True, 0),
        # Only ASCII punctuation is removed: «ёлочки», em dash and ellipsis survive.
        ("«Москва»", "Москва", True, True, 0),
        ("Москва…", "Москва", True, True, 0),
        ("да — нет", "да  нет", True, True, 0),
        ('"Москва"', "Москва", True, True, 1),
        ("нет", ["да", "Нет"], True, True, 1),
        ("нет", ["да", "Нет"], False, False, 0),
        ("", [], True, True, 0),
        ("B", "B", False, False, 1),
    ],
)
def test_em_parity(pred: str, golds: str | list[str], ic: bool, ip: bool, expected: int) -> None:
    assert em_parity(pred, golds, ignore_case=ic, ignore_punctuation=ip) == expected


# --------------------------------------------------------------------- normalize_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Ёлка  ", "елка"),
        ("«Война и мир»", "война и мир"),
        ("„Идиот“", "идиот"),
        ("Пушкин — поэт…", "пушкин поэт"),
        ("192.", "192"),
        (" 192 ", "192"),
        ("да,нет", "да нет"),
        ("ＡＢＣ", "abc"),  # fullwidth letters fold under NFKC
        ("`Москва´", "москва"),
        ("Привет,\n\tмир!", "привет мир"),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_normalize_answer_decomposed_yo() -> None:
    # "е" + combining diaeresis composes to "ё" under NFKC, then folds to "е".
    assert normalize_answer("е\u0308ж") == "еж"


# ---------------------------------------------------------------- extract_choice_letter


@pytest.mark.parametrize(
    ("text", "letters", "expected"),
    [
        ("B", "ABCD", "B"),
        ("b)", "ABCD", "B"),
        ("(C)", "ABCD", "C"),
        ("Ответ: B", "ABCD", "B"),
        ("ответ - d.", "ABCD", "D"),
        ("Answer: A", "ABCD", "A"),
        ("ОТВЕТ B", "ABCD", "B"),
        ("В", "ABCD", "B"),  # Cyrillic Ve looks like Latin B
        ("Ответ: С", "ABCD", "C"),  # Cyrillic Es
        ("а", "ABCD", "A"),
        ("ОТВЕТ: Б", "ABCD", "B"),  # Б has no Latin twin: read by position
        ("ОТВЕТ: Б", "АБВГ", "Б"),
        ("б", "АБВГ", "Б"),
        ("B", "АБВГ", "В"),  # Latin B looks like Cyrillic Ve
        ("Правильный ответ — B.", "ABCD", "B"),
        ("B. Москва", "ABCD", "B"),
        ("Ответ: B, а не C", "ABCD", "B"),  # the labelled letter wins
        ("Я думаю, что в данном случае верно B", "ABCD", "B"),
        ("B… повторю: B", "ABCD", "B"),
        ("Москва", "ABCD", None),
        ("Z", "ABCD", None),
        ("2", "ABCD", None),
        ("", "ABCD", None),
        ("«D»", "ABCD", "D"),
    ],
)
def test_extract_choice_letter(text: str, letters: str, expected: str | None) -> None:
    assert extract_choice_letter(text, letters) == expected


# -------------------------------------------------------------------------- em_normalized


@pytest.mark.parametrize(
    ("pred", "golds", "expected"),
    [
        ("Ответ: B", "B", 1),
        ("b)", "B", 1),
        ("В", "B", 1),
        ("C", "B", 0),
        ("ОТВЕТ: Б", "Б", 1),
        ("б)", ["Б"], 1),
        ("Ответ: Ж", "Ж", 1),
        ("B", "Б", 1),  # ruTiE-Image: gold Б is the second option, B
        ("192.", "192", 1),
        (" 192 ", "192", 1),
        ("192", "192.", 1),
        ("«Война и мир»", "война и мир", 1),
        ("Ёлка…", "елка", 1),
        ("Ответ: Москва.", "Москва", 1),
        ("Answer — Moscow", "moscow", 1),
        ("Москва", "Санкт-Петербург", 0),
        ("да", "['нет', 'Да']", 1),
        ("Да.", ["нет", "да"], 1),
        ("возможно", ["нет", "да"], 0),
        ("что угодно", "", 0),
        ("", "да", 0),
    ],
)
def test_em_normalized(pred: str, golds: str | list[str], expected: int) -> None:
    assert em_normalized(pred, golds) == expected


# ----------------------------------------------------------------- golds and aggregation


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("['да', 'Да']", ["да", "Да"]),
        ('["кошка", "кот"]', ["кошка", "кот"]),
        (["да", "нет"], ["да", "нет"]),
        ("Москва", ["Москва"]),
        ("[1] Москва", ["[1] Москва"]),  # not a valid literal: kept as is
        ("[неверно", ["[неверно"]),
        ("[3, 4]", ["3", "4"]),
        (None, []),
        (5, ["5"]),
    ],
)
def test_parse_golds(value: object, expected: list[str]) -> None:
    assert parse_golds(value) == expected


@pytest.mark.parametrize(
    ("golds", "expected"),
    [
        (None, True),
        ("", True),
        ("   ", True),
        ([], True),
        (["", " "], True),
        ("[]", True),
        (float("nan"), True),
        ("да", False),
        (["", "да"], False),
        ("['да']", False),
    ],
)
def test_gold_is_missing(golds: object, expected: bool) -> None:
    assert gold_is_missing(golds) is expected


def test_mean_of_scored() -> None:
    assert mean_of_scored([1, 0, None, 1]) == pytest.approx(2 / 3)
    assert mean_of_scored([0.5, None]) == 0.5
    assert math.isnan(mean_of_scored([None, None]))
    assert math.isnan(mean_of_scored([]))


def test_group_all_correct() -> None:
    items = [
        ("q1", 1),
        ("q1", 1),
        ("q2", 1),
        ("q2", 0),
        ("q3", 1),
        ("q3", None),  # missing gold does not sink the group
        ("q4", None),  # group with nothing scored is dropped
    ]
    assert group_all_correct(items) == pytest.approx(2 / 3)
    assert group_all_correct([(7, 1)]) == 1.0
    assert group_all_correct([("a", 0), ("b", 0)]) == 0.0
    assert math.isnan(group_all_correct([("a", None), ("b", None)]))
    assert math.isnan(group_all_correct([]))


# ----------------------------------------------------------------------------- ruSLUn

_DICT = {"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}


@pytest.mark.parametrize(
    "reply",
    [
        '{"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}',
        '```json\n{"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}\n```',
        'Вот ответ:\n```\n{"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}\n```\nГотово.',
        '```{"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}```',
        '`{"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}`',
        'JSON: {"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}',
        'json\n{"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}',
        '"{\\"intent\\": \\"PlayMusic\\", \\"slots\\": [{\\"artist\\": \\"Кино\\"}]}"',
        "{'intent': 'PlayMusic', 'slots': [{'artist': 'Кино'}]}",
        'Интент — {"intent": "PlayMusic", "slots": [{"artist": "Кино"}]} — вот так.',
        '```json\n{"intent": "PlayMusic", "slots": [{"artist": "Кино"}]}',  # unclosed fence
    ],
)
def test_extract_json_object_variants(reply: str) -> None:
    assert extract_json_object(reply) == _DICT


@pytest.mark.parametrize("reply", ["", "   ", "не знаю", "{intent: PlayMusic", "```\n```"])
def test_extract_json_object_failures(reply: str) -> None:
    assert extract_json_object(reply) is None


def test_extract_json_object_non_dict() -> None:
    assert extract_json_object("[1, 2]") == [1, 2]
    assert extract_json_object("42") == 42


def test_parse_slun_reference() -> None:
    ref = "{'intent': 'PlayMusic', 'slots': [{'artist': \"Guns N' Roses\"}]}"
    assert parse_slun_reference(ref) == {
        "intent": "PlayMusic",
        "slots": [{"artist": "Guns N' Roses"}],
    }
    assert parse_slun_reference('{"intent": "RateBook", "slots": []}') == {
        "intent": "RateBook",
        "slots": [],
    }
    assert parse_slun_reference("") is None
    assert parse_slun_reference("не json") is None
    assert parse_slun_reference("[1, 2]") is None


def test_slun_exact() -> None:
    ref = '{"intent": "BookRestaurant", "slots": [{"city": "Москва"}, {"time": "вечер"}]}'
    pred = (
        '```json\n{"intent": "bookrestaurant", "slots": [{"time": "Вечер"}, {"city": "москва"}]}```'
    )
    assert slun_scores(pred, ref) == {"intent_em": 1.0, "slot_f1": 1.0}


def test_slun_camelcase_intent_both_sides() -> None:
    # The reference is CamelCase and the prediction lowercase (and vice versa).
    assert (
        slun_scores('{"intent": "ratebook", "slots": []}', "{'intent': 'RateBook', 'slots': []}")[
            "intent_em"
        ]
        == 1.0
    )
    assert slun_scores('{"intent": "RateBook"}', '{"intent": " ratebook "}')["intent_em"] == 1.0


def test_slun_partial_slots() -> None:
    ref = "{'intent': 'PlayMusic', 'slots': [{'artist': \"Guns N' Roses\"}, {'genre': 'рок'}]}"
    pred = '{"intent": "GetWeather", "slots": [{"artist": "guns n\' roses"}, {"genre": "джаз"}]}'
    scores = slun_scores(pred, ref)
    assert scores["intent_em"] == 0.0
    assert scores["slot_f1"] == pytest.approx(0.5)


def test_slun_multiset_slots() -> None:
    ref = '{"intent": "A", "slots": [{"city": "Москва"}, {"city": "Москва"}]}'
    pred = '{"intent": "A", "slots": [{"city": "Москва"}]}'
    # P = 1, R = 1/2 -> F1 = 2/3
    assert slun_scores(pred, ref)["slot_f1"] == pytest.approx(2 / 3)


def test_slun_empty_slots() -> None:
    ref = '{"intent": "Greeting", "slots": []}'
    assert slun_scores('{"intent": "Greeting", "slots": []}', ref)["slot_f1"] == 1.0
    assert slun_scores('{"intent": "Greeting"}', ref)["slot_f1"] == 1.0
    assert slun_scores('{"intent": "Greeting", "slots": [{"x": "y"}]}', ref)["slot_f1"] == 0.0
    full_ref = '{"intent": "Greeting", "slots": [{"x": "y"}]}'
    assert slun_scores('{"intent": "Greeting", "slots": []}', full_ref)["slot_f1"] == 0.0


def test_slun_alternative_slot_shapes() -> None:
    ref = '{"intent": "A", "slots": [{"city": "Казань"}, {"date": "завтра"}]}'
    as_dict = '{"intent": "A", "slots": {"city": "Казань", "date": "Завтра"}}'
    as_pairs = '{"intent": "A", "slots": [["city", "Казань"], ["date", "завтра"]]}'
    assert slun_scores(as_dict, ref)["slot_f1"] == 1.0
    assert slun_scores(as_pairs, ref)["slot_f1"] == 1.0


def test_slun_malformed_slots_are_ignored() -> None:
    ref = '{"intent": "A", "slots": [{"city": "Казань"}]}'
    pred = '{"intent": "A", "slots": [{"city": "Казань"}, "мусор", 3, ["один"], {"x": [1]}]}'
    assert slun_scores(pred, ref) == {"intent_em": 1.0, "slot_f1": 1.0}
    assert slun_scores('{"intent": "A", "slots": "Казань"}', ref)["slot_f1"] == 0.0


@pytest.mark.parametrize("pred", ["[1, 2]", "42", '"строка"', "не знаю", ""])
def test_slun_non_dict_prediction(pred: str) -> None:
    assert slun_scores(pred, '{"intent": "A", "slots": []}') == {"intent_em": 0.0, "slot_f1": 0.0}


@pytest.mark.parametrize("ref", ["", "   ", "не json", "[1, 2]"])
def test_slun_missing_reference(ref: str) -> None:
    assert slun_scores('{"intent": "A", "slots": []}', ref) == {"intent_em": None, "slot_f1": None}


def test_slun_missing_reference_aggregates_to_nan() -> None:
    scores = [slun_scores('{"intent": "A"}', "")["intent_em"] for _ in range(3)]
    assert math.isnan(mean_of_scored(scores))
