"""The one answer extractor (lm_eval_patches.answers) and exact_match_norm built on it.

``cases/answers.json`` is the shared case file of issue 6 (replies, golds, option letters and
the right exact_match_norm); the other tests cover each kind of reply beyond that file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from lm_eval_patches.answers import (
    SHORT_REPLY_WORDS,
    extract_answer,
    extract_choice,
    letter_to_label,
    option_labels,
)
from lm_eval_patches.metrics import em_parity, extract_choice_letter
from lm_eval_patches.tasks.scoring import ScoringOptions, score_doc

CASES = json.loads((Path(__file__).parent / "cases" / "answers.json").read_text("utf-8"))
ABCD = ["A", "B", "C", "D"]
OPTION_TEXTS = ["в аэропорту", "на причале", "на вокзале", "в метро", "дома", "в поле", "в лесу"]


def _doc(gold: str, labels: list[str]) -> dict:
    """A MERA doc whose prompt lists ``labels`` (its option_* inputs) and whose gold is ``gold``."""
    inputs = {"question": "Где сделана запись?"}
    inputs.update({f"option_{x.lower()}": OPTION_TEXTS[i] for i, x in enumerate(labels)})
    return {"inputs": inputs, "outputs": gold, "meta": {"id": 1}}


def _norm(reply: str, gold: str, labels: list[str], **options: object) -> int:
    return score_doc(ScoringOptions.from_dict(options), _doc(gold, labels), reply)[
        "exact_match_norm"
    ]


# ----------------------------------------------------------------- the shared case file
@pytest.mark.parametrize("case", CASES, ids=[c["prediction"][:40] for c in CASES])
def test_answers_json_case(case: dict) -> None:
    assert _norm(case["prediction"], case["gold"], case["options"]) == case["exact_match_norm"]


def test_parity_exact_match_keeps_the_original_behaviour_on_the_cases() -> None:
    # The original harness compares raw strings: none of these wordy replies matches.
    wordy = [c for c in CASES if len(c["prediction"]) > 2]
    assert all(em_parity(c["prediction"], c["gold"], True, True) == 0 for c in wordy)
    assert em_parity("-5", "5", True, True) == 1  # its known flaw, kept for parity
    scores = score_doc(ScoringOptions(), _doc("C", ABCD), "<think>A</think>C")
    assert scores == {"exact_match": 0, "exact_match_norm": 1}


# -------------------------------------------------------------------- one-letter words
WORD_LETTERS = ["в", "с", "к", "и", "а", "о", "у", "я"]


@pytest.mark.parametrize("word", WORD_LETTERS + [w.upper() for w in WORD_LETTERS])
def test_one_letter_russian_word_is_not_a_letter(word: str) -> None:
    labels = list("ABCDEFGHIJ")
    for reply in (f"{word} аэропорту", f"Думаю, {word} аэропорту.", f"Ответ: {word} аэропорту"):
        found = extract_answer(reply, labels=labels)
        assert found.value is None, (reply, found)


@pytest.mark.parametrize(
    "reply",
    [
        "I think so.",
        "I'm not sure.",
        "Well, I guess it is a trap.",
        "a cat on a mat",
        "It is a cat, I believe",
    ],
)
def test_english_i_and_a_inside_sentences_are_not_letters(reply: str) -> None:
    assert extract_choice(reply, list("ABCDEFGHIJ")) is None


@pytest.mark.parametrize(("reply", "gold"), [("В аэропорту", "B"), ("С вокзала", "C")])
def test_option_text_starting_with_a_one_letter_word_scores_0(reply: str, gold: str) -> None:
    assert _norm(reply, gold, ABCD) == 0


@pytest.mark.parametrize(("reply", "expected"), [("в", "B"), ("В.", "B"), ("с)", "C"), ("а", "A")])
def test_a_one_letter_reply_is_that_letter(reply: str, expected: str) -> None:
    assert extract_choice(reply, ABCD) == expected


# ------------------------------------------------------------------------ labelled forms
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Ответ: B", "B"),
        ("ответ - d.", "D"),
        ("ОТВЕТ B", "B"),
        ("Answer: A", "A"),
        ("The answer is C.", "C"),
        ("I think the answer is (B), since A is wrong", "B"),
        ("Правильный ответ — B.", "B"),
        ("правильный вариант: C", "C"),
        ("Верный вариант ответа — D", "D"),
        ("Мой выбор: A", "A"),
        ("Я выбираю C, потому что D неверно", "C"),
        ("The correct option is D", "D"),
        ("Ответ: **B**", "B"),
        ("Ответ: «C»", "C"),
        ("Ответ: вариант B", "B"),
        ("Ответ: B, а не C", "B"),
        ("Сначала кажется, что ответ A. Нет, правильный ответ: B", "B"),  # the last one wins
        ("Рассмотрим A и C.\nОтвет: C\nВариант A отпадает.", "C"),
        ("<answer>D</answer>", "D"),
        ("Итак, \\boxed{C}", "C"),
    ],
)
def test_labelled_answer(reply: str, expected: str) -> None:
    assert extract_choice(reply, ABCD) == expected


def test_labelled_answer_wins_over_letters_elsewhere() -> None:
    reply = "Варианты A и D неверны, B сомнителен. Ответ: C. D точно нет."
    found = extract_answer(reply, labels=ABCD)
    assert (found.value, found.method) == ("C", "labelled")


# --------------------------------------------------------- whole, line, leading, bold, short
@pytest.mark.parametrize(
    ("reply", "expected", "method"),
    [
        ("B", "B", "whole"),
        ("b)", "B", "whole"),
        ("(C)", "C", "whole"),
        ("**D**", "D", "whole"),
        ("«D»", "D", "whole"),
        ("B…", "B", "whole"),
        ("Посмотрим на картинку.\n\nB\n", "B", "line"),
        ("**C**\n\nНа изображении видно, что вариант A неверен.", "C", "line"),
        ("B. на причале", "B", "leading"),
        ("B) на причале", "B", "leading"),
        ("(A) в аэропорту, судя по объявлениям", "A", "leading"),
        ("**B.** на причале", "B", "leading"),
        ("Здесь слышны чайки и плеск воды, так что я выбираю **B** без сомнений.", "B", "labelled"),
        ("Слышны чайки и плеск воды, поэтому **B** — лучший вариант из всех, A хуже", "B", "bold"),
        ("Я думаю, что в данном случае верно B", "B", "short"),
        ("Похоже на С.", "C", "short"),  # Cyrillic Es
    ],
)
def test_standing_forms(reply: str, expected: str, method: str) -> None:
    found = extract_answer(reply, labels=ABCD)
    assert (found.value, found.method) == (expected, method)


@pytest.mark.parametrize(
    "reply",
    [
        "A\nB",  # two lines, two answers
        "A или B",
        "**A** или **C**, трудно сказать, не уверен совсем, правда, очень трудно",
        "Москва",
        "Z",
        "2",
        "",
        "В. И. Ленин",  # initials are not answers
        "т.е. не знаю",
        "A. в аэропорту\nB. на причале\nC. на вокзале",  # the options echoed, none chosen
    ],
)
def test_no_single_answer(reply: str) -> None:
    found = extract_answer(reply, labels=ABCD)
    assert found.value is None and found.reason, found


def test_letters_come_from_the_task_options() -> None:
    # A two-option task (WEIRD, ruHHH): C is not an option, so "C" is no answer there.
    assert extract_choice("C", ["A", "B"]) is None
    assert extract_choice("Ответ: C", ["A", "B"]) is None
    # LabTabVQA has seven options: G is one.
    assert extract_choice("Ответ: G", list("ABCDEFG")) == "G"
    assert _norm("G", "G", list("ABCDEFG")) == 1
    assert option_labels({"option_b": "x", "option_a": "y", "option_c": "", "q": "z"}) == [
        "A",
        "B",
    ]


def _gibberish(marker: str, seed: int = 0, tokens: int = 256) -> str:
    rng = random.Random(seed)
    alphabet = "абвгдежзиклмнопрстуфхцчшщыэюяqwertyuiopasdfghjklzxcvbnm0123456789"
    words = ["".join(rng.choices(alphabet, k=rng.randint(2, 9))) for _ in range(tokens)]
    words[tokens // 2] = marker
    return " ".join(words)


@pytest.mark.parametrize("marker", ["D)", "D", "(D)", "D.", "D,", "«D»"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_reply_with_one_stray_capital_is_not_an_answer(marker: str, seed: int) -> None:
    reply = _gibberish(marker, seed)
    assert len(reply.split()) > SHORT_REPLY_WORDS
    assert _norm(reply, "D", ABCD) == 0


def test_short_reply_threshold_is_what_makes_a_stray_capital_count() -> None:
    short = " ".join(["слово"] * (SHORT_REPLY_WORDS - 1) + ["D"])
    long = " ".join(["слово"] * SHORT_REPLY_WORDS + ["D"])
    assert extract_choice(short, ABCD) == "D"
    assert extract_choice(long, ABCD) is None


# ------------------------------------------------------------------------------ Cyrillic
@pytest.mark.parametrize(
    ("gold", "label"), [("А", "A"), ("Б", "B"), ("В", "C"), ("Г", "D"), ("б", "B"), ("B", "B")]
)
def test_cyrillic_gold_is_read_by_position(gold: str, label: str) -> None:
    assert letter_to_label(gold, ABCD, prefer="position") == label


@pytest.mark.parametrize(
    ("reply", "labels", "expected"),
    [
        ("А", ABCD, "A"),  # looks like A (and is the first)
        ("В", ABCD, "B"),  # a reader sees B
        ("С", ABCD, "C"),
        ("Б", ABCD, "B"),  # no Latin twin: by position
        ("Г", ABCD, "D"),
        ("Д", list("ABCDE"), "E"),
        ("Е", list("ABCDEFG"), "E"),  # looks like E (by position it would be F)
        ("Ж", list("ABCDEFG"), "G"),
        ("Д", ABCD, None),  # fifth letter, four options
        ("B", ["А", "Б", "В", "Г"], "В"),  # Cyrillic labels: Latin B looks like В
    ],
)
def test_cyrillic_reply_letter(reply: str, labels: list[str], expected: str | None) -> None:
    assert letter_to_label(reply, labels) == expected
    assert extract_choice(f"Ответ: {reply}", labels) == expected


def test_real_rutie_image_record() -> None:
    """MERA-evaluation/ruTiE-Image's card record: options A–D in Latin, gold "Б" (option_b,
    "Сол": the soldiers painted the roses)."""
    doc = {
        "instruction": "… Вопрос:\n{question}\nA. {option_a}\nB. {option_b}\nC. {option_c}\n"
        "D. {option_d}\nОтвет:",
        "inputs": {"question": "Так как меня звать?", "option_a": "Худ", "option_b": "Сол"}
        | {"option_c": "Мал", "option_d": "Зак"},
        "outputs": "Б",
        "meta": {"id": 1},
    }
    score = {r: score_doc(ScoringOptions(), doc, r)["exact_match_norm"] for r in ("B", "Б", "A")}
    assert score == {"B": 1, "Б": 1, "A": 0}
    assert _norm("Ответ: C", "В", ABCD) == 1  # a Cyrillic gold В is option C
    assert _norm("Ответ: B", "В", ABCD) == 0


# -------------------------------------------------------------------- API odds and ends
def test_extract_answer_kinds() -> None:
    assert extract_answer("Ответ: «Москва»!").value == "москва"
    assert extract_answer("Ответ: −3,5", kind="number").value == "-3.5"
    assert extract_answer("B", kind="choice").reason == "no option labels given"
    assert extract_answer("   ").reason == "empty reply"
    assert extract_choice_letter("Ответ: b", "ABCD") == "B"  # the first API, same reader


# ------------------------------------------------------- through lm-eval: the samples log
def test_samples_log_keeps_the_raw_reply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reasoning model's replies go through lm-eval's evaluator unchanged: the samples log
    holds them raw (think block and all); only exact_match_norm reads past the reasoning."""
    import lm_eval
    import lm_eval.tasks
    from conftest import TASKS_DIR, write_variant
    from lm_eval.api.model import LM

    import lm_eval_patches

    class ThinkingLM(LM):
        """Reasons about the wrong option, then answers the gold in bold."""

        MULTIMODAL = True

        def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
            return [self.reply(r.doc) for r in requests]

        @staticmethod
        def reply(doc: dict) -> str:
            wrong = "B" if doc["outputs"] == "A" else "A"
            return f"<think>Ответ: {wrong}? Проверю.</think>\n**{doc['outputs']}**"

        def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
            raise NotImplementedError

        def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list:
            raise NotImplementedError

    write_variant("WEIRD", {}, tmp_path)
    monkeypatch.setenv("MERA_DATA_DIR", str(tmp_path))
    lm_eval_patches.register()
    manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model=ThinkingLM(), tasks=["weird"], task_manager=manager, log_samples=True
    )
    samples = out["samples"]["weird"]
    assert samples
    for sample in samples:
        raw = ThinkingLM.reply(sample["doc"])
        assert sample["resps"] == [[raw]] and sample["filtered_resps"] == [raw]
        assert (sample["exact_match"], sample["exact_match_norm"]) == (0.0, 1)
    scores = out["results"]["weird"]
    assert (scores["exact_match,none"], scores["exact_match_norm,none"]) == (0.0, 1.0)
