"""A placeholder written inside an input value is text, never a media slot, for every kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TASKS_DIR, write_variant

from lm_eval_patches.failures import failed_at_build
from lm_eval_patches.tasks.prompt import (
    WORD_JOINER,
    fill_instruction,
    order_fields_by_placeholders,
    placeholders,
)

CASES = Path(__file__).parent / "cases"
LITERALS = ["<image>", "<audio>", "<audio_2>", "<video>", "<Image>", "< video >", "<image_3>"]


@pytest.mark.parametrize("literal", LITERALS)
def test_filled_values_are_never_slots(literal: str) -> None:
    template = "<image> <audio_1> <audio_2> Вопрос: {question}"
    question = f"Что значит {literal} в этом тексте?"
    text = fill_instruction(template, {"question": question}, {"image": "image"})
    assert placeholders(text) == [("image", None), ("audio", 1), ("audio", 2)]
    assert text.replace(WORD_JOINER, "").endswith(question)  # the words are kept
    present = {"image": "image", "audio_1": "audio", "audio_2": "audio"}
    assert order_fields_by_placeholders(text, present) == (["image", "audio_1", "audio_2"], None)


def test_text_without_placeholders_is_unchanged() -> None:
    question = "Сравните a<b и <imagine> и <video-clip>, {braces} тоже."
    assert fill_instruction("{question}", {"question": question}, {}) == question


def _set_question(question: str, instruction: str | None = None, only_id: int | None = None):
    def breaker(record: dict) -> None:
        if only_id is None or record["meta"]["id"] == only_id:
            record["inputs"]["question"] = question
            if instruction is not None:
                record["instruction"] = instruction

    return breaker


def _request(task, doc):
    ctx = task.doc_to_text(doc)
    return task.construct_requests(doc, ctx, metadata=(task.config.task, 0, 1)), ctx


def _load(tmp_path: Path, dataset: str, task_name: str, breakers: dict, monkeypatch):
    import lm_eval.tasks

    write_variant(dataset, breakers, tmp_path)
    monkeypatch.setenv("MERA_DATA_DIR", str(tmp_path))
    manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    return manager.load([task_name])["tasks"][task_name]


@pytest.mark.parametrize(
    ("dataset", "task_name", "literal"),
    [
        ("ruCommonVQA", "rucommonvqa", "<image>"),
        ("ruEnvAQA", "ruenvaqa", "<audio>"),
        ("AQUARIA", "aquaria", "<audio_2>"),
        ("CommonVideoQA", "commonvideoqa", "<video>"),
    ],
)
def test_literal_placeholder_in_a_question_of_each_kind(
    dataset: str, task_name: str, literal: str, tmp_path: Path, monkeypatch
) -> None:
    question = f"Что означает {literal} здесь?"
    task = _load(tmp_path, dataset, task_name, {0: _set_question(question)}, monkeypatch)
    docs = [d for d in task.test_docs() if d["inputs"]["question"] == question]
    assert docs
    for doc in docs:
        instance, ctx = _request(task, doc)
        assert not failed_at_build(instance.args), instance.args[2]
        media = [m for values in instance.args[2].values() for m in values]
        assert len(placeholders(ctx)) == len(media) == len(task.doc_media(doc)) >= 1
        assert question in ctx.replace(WORD_JOINER, "")


def test_case_literal_image_tag_record(tmp_path: Path, monkeypatch) -> None:
    case = json.loads((CASES / "literal_image_tag_record.json").read_text())
    question, instruction = case["inputs"]["question"], case["instruction"]
    breakers = {i: _set_question(question, instruction, only_id=4) for i in range(20)}
    task = _load(tmp_path, "ruCommonVQA", "rucommonvqa", breakers, monkeypatch)
    (doc,) = [d for d in task.test_docs() if d["meta"]["id"] == 4]
    instance, ctx = _request(task, doc)
    assert not failed_at_build(instance.args), instance.args[2]
    assert list(instance.args[2]) == ["visual"] and len(instance.args[2]["visual"]) == 1
    assert placeholders(ctx) == [("image", None)]
    assert f"Вопрос: {question}" in ctx.replace(WORD_JOINER, "")
