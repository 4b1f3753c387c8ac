"""ruTiE dialogues (``rutie_vision_gen``/``rutie_audio_gen``): each prompt holds exactly the
right history (earlier questions, options, media, the model's OWN extracted answers), in order,
for N = 0, 1, 5, in plain and chat modes; through an API backend on loopback the 3 dialogues
are in flight at once, each question after the earlier ones of its dialogue."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest
from conftest import TASKS_DIR, run_cli
from lm_eval.api.model import LM
from loopback_api import Behaviour, LoopbackAPI

import lm_eval_patches
from lm_eval_patches.fixtures.builder import FixtureOptions, build_fixtures
from lm_eval_patches.tasks.dialogue import NO_ANSWER, dialogue_places

PER_DIALOGUE = 7  # > 5 + 1, so N = 5 really cuts the history
TASKS = ["rutie_vision_gen", "rutie_audio_gen"]
# The scripted model's replies by meta.id, and what the extractor must read from each.
REPLIES = ["ОТВЕТ Б", "Ответ: C", "А", "не знаю", "D."]
SHOWN = ["B", "C", "A", NO_ANSWER, "D"]


def reply_for(doc: dict) -> str:
    return REPLIES[doc["meta"]["id"] % len(REPLIES)]


def shown_for(doc: dict) -> str:
    return SHOWN[doc["meta"]["id"] % len(SHOWN)]


class ScriptedLM(LM):
    """Answers by rule (its reply depends only on the doc id) and records every prompt it
    gets, with the time order of the calls."""

    MULTIMODAL = True

    def __init__(self, die_at_call: int | None = None) -> None:
        super().__init__()
        self.asked: list[tuple[str, dict, object, dict]] = []
        # Stands for the process dying when asked for this batch (the same model class, so
        # the cache's model identity matches the resumed run's).
        self.calls_left = die_at_call

    @property
    def tokenizer_name(self) -> str:
        return "scripted"

    def apply_chat_template(self, chat_history: list[dict], add_generation_prompt=True) -> str:
        return json.dumps(chat_history, ensure_ascii=False)

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        if self.calls_left is not None:
            self.calls_left -= 1
            if self.calls_left == 0:
                raise Killed("killed mid-run")
        out = []
        for request in requests:
            ctx, _, *rest = request.arguments
            self.asked.append((request.task_name, request.doc, ctx, rest[0] if rest else {}))
            out.append(reply_for(request.doc))
        return out

    def loglikelihood(self, requests, disable_tqdm=False):  # pragma: no cover - unused
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm=False):  # pragma: no cover
        raise NotImplementedError


@pytest.fixture(scope="module")
def dialogue_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rutie")
    options = FixtureOptions(test=3 * PER_DIALOGUE)
    build_fixtures(out, names=["ruTiE-Image", "ruTiE-Audio"], options=options)
    return out


@pytest.fixture
def offline(dialogue_mirror: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MERA_DATA_DIR", str(dialogue_mirror))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    lm_eval_patches.register()
    return dialogue_mirror


def _run(n: int, chat: bool, multiturn: bool) -> tuple[ScriptedLM, dict]:
    import lm_eval
    import lm_eval.tasks

    lm = ScriptedLM()
    manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    results = lm_eval.simple_evaluate(
        model=lm,
        tasks=TASKS,
        num_fewshot=n,
        apply_chat_template=chat,
        fewshot_as_multiturn=multiturn,
        task_manager=manager,
        log_samples=True,
    )
    return lm, results


def _dialogues(lm: ScriptedLM, task: str) -> list[list[dict]]:
    docs = [doc for name, doc, _, _ in lm.asked if name == task]
    return dialogue_places(docs, 3, task)[1]


def _question(doc: dict) -> str:
    """What identifies a question in a prompt: its question text (image) or option lines."""
    inputs = doc["inputs"]
    lines = [inputs["question"]] if inputs.get("question") else []
    return "\n".join(lines + [f"{c}. {inputs[f'option_{c.lower()}']}" for c in "ABCD"])


def _media_count(doc: dict) -> int:
    return sum(1 for k in ("image", "audio") if doc["inputs"].get(k))


def _expected_history(dialogue: list[dict], position: int, n: int) -> list[dict]:
    return dialogue[max(0, position - n) : position]


@pytest.mark.parametrize(
    ("n", "chat", "multiturn"),
    [
        (0, False, False),
        (1, False, False),
        (5, False, False),
        (1, True, True),
        (5, True, True),
        (5, True, False),
    ],
)
def test_each_prompt_holds_exactly_its_history(offline, n: int, chat: bool, multiturn: bool):
    lm, results = _run(n, chat, multiturn)
    assert len(lm.asked) == 2 * 3 * PER_DIALOGUE
    order = {id(doc): k for k, (_, doc, _, _) in enumerate(lm.asked)}
    prompts = {id(doc): (ctx, media) for _, doc, ctx, media in lm.asked}
    for task in TASKS:
        dialogues = _dialogues(lm, task)
        assert [len(d) for d in dialogues] == [PER_DIALOGUE] * 3
        for dialogue in dialogues:
            for position, doc in enumerate(dialogue):
                history = _expected_history(dialogue, position, n)
                ctx, media = prompts[id(doc)]
                # Asked after every earlier question of its dialogue.
                assert all(order[id(d)] < order[id(doc)] for d in dialogue[:position])
                count = sum(len(v) for v in media.values())
                assert count == sum(map(_media_count, history)) + _media_count(doc), (task, n)
                if chat and multiturn:
                    turns = json.loads(ctx)
                    assert [t["role"] for t in turns] == ["user", "assistant"] * len(history) + [
                        "user"
                    ]
                    for k, old in enumerate(history):
                        assert _question(old) in turns[2 * k]["content"]
                        assert turns[2 * k + 1]["content"] == shown_for(old)  # never the gold
                    text = turns[-1]["content"]
                    assert _question(doc) in text
                else:
                    text = ctx if not chat else "\n".join(t["content"] for t in json.loads(ctx))
                    spots = [text.find(_question(old)) for old in history]
                    assert -1 not in spots and spots == sorted(spots), (task, n, position)
                    for old, spot in zip(history, spots, strict=True):
                        after = text[spot + len(_question(old)) :]
                        assert after.startswith(f"\nОтвет: {shown_for(old)}")
                    assert text.rstrip().endswith(_question(doc) + "\nОтвет:")
                # No other question of the run leaks in; the slot never reaches the model.
                whole = ctx if not chat else "\n".join(t["content"] for t in json.loads(ctx))
                assert whole.count("A. ") == len(history) + 1
                assert "<context>" not in whole and "{context}" not in whole
    # The samples log shows per question the history asked with and the extracted answer.
    sample = results["samples"]["rutie_vision_gen"][PER_DIALOGUE - 1]
    record = sample["arguments"][0][-1]["mera_dialogue"]
    assert record["position"] == PER_DIALOGUE - 1
    assert len(record["history"]) == min(n, PER_DIALOGUE - 1)
    assert record["extracted_answer"] == shown_for(sample["doc"])
    for entry in record["history"]:
        assert {"id", "text", "media", "answer"} <= set(entry)


def test_dialogue_places_from_data_not_from_offsets() -> None:
    """Dialogue and position come from the data: ids need not be contiguous nor start at 11."""
    docs = [{"meta": {"id": i}} for i in (905, 3, 77, 12, 400, 41)]
    places, turns = dialogue_places(docs, 2, "t")
    assert [[d["meta"]["id"] for d in t] for t in turns] == [[3, 12, 41], [77, 400, 905]]
    assert places["77"] == (1, 0) and places["41"] == (0, 2)
    explicit = [{"meta": {"id": i, "dialog_id": i % 2, "question_id": -i}} for i in range(4)]
    assert [[d["meta"]["id"] for d in t] for t in dialogue_places(explicit, 3, "t")[1]] == [
        [2, 0],
        [3, 1],
    ]
    with pytest.raises(Exception, match="do not split into 4 dialogues"):
        dialogue_places(docs, 4, "t")


@pytest.mark.slow
def test_api_backend_runs_the_three_dialogues_at_once(dialogue_mirror: Path, tmp_path: Path):
    """local-chat-completions on loopback, N = 2, chat multiturn, pass mode: the server sees
    the 3 dialogues overlap, and each question only after its predecessor was answered."""
    lock = threading.Lock()
    with LoopbackAPI(Behaviour(latency_s=0.3, reply="ОТВЕТ Б")) as server:
        started = time.monotonic()
        run_cli(
            [
                "run",
                "--model",
                "local-chat-completions",
                "--model_args",
                f"model=tiny,base_url={server.url},num_concurrent=3,max_retries=1",
                "--include_path",
                str(TASKS_DIR),
                "--tasks",
                "rutie_vision_gen",
                "--num_fewshot",
                "2",
                "--apply_chat_template",
                "--fewshot_as_multiturn",
                "--pass_multimodal_args_to_chat_history",
                "--log_samples",
                "--output_path",
                str(tmp_path),
            ],
            {"MERA_DATA_DIR": str(dialogue_mirror)},
        )
        with lock:
            bodies, arrivals = list(server.received), list(server.times)
        assert server.max_in_flight == 3
    assert len(bodies) == 3 * PER_DIALOGUE and all(t > started for t in arrivals)
    assistant = [[m["content"] for m in b["messages"] if m["role"] == "assistant"] for b in bodies]
    # Pass mode: each medium sits in its own question's user turn, history turns included.
    images = [
        [
            sum(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
            if isinstance(m["content"], list)
            else 0
            for m in b["messages"]
            if m["role"] == "user"
        ]
        for b in bodies
    ]
    assert images and all(n <= 1 for turns in images for n in turns)
    assert any(n == 1 for turns in images for n in turns[:-1])
    # Every history answer is the model's own reply read by the extractor ("ОТВЕТ Б" -> B).
    assert all(a == "B" for turns in assistant for a in turns)
    lengths = sorted(len(turns) for turns in assistant)
    assert lengths == [0] * 3 + [1] * 3 + [2] * (3 * PER_DIALOGUE - 6)
    # Step k of the 3 dialogues arrives together, after step k-1 was answered (latency 0.3 s).
    steps = [arrivals[i : i + 3] for i in range(0, len(arrivals), 3)]
    for before, after in zip(steps, steps[1:], strict=False):
        assert min(after) - max(before) >= 0.25


class Killed(RuntimeError):
    """Stands for the process dying mid-run."""


def _evaluate(lm: LM, **kwargs) -> dict:
    import lm_eval
    import lm_eval.tasks

    manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    return lm_eval.simple_evaluate(
        model=lm, tasks=TASKS, num_fewshot=2, task_manager=manager, log_samples=True, **kwargs
    )


def _answers(results: dict) -> dict[tuple[str, int], tuple[str, list]]:
    return {
        (task, s["doc"]["meta"]["id"]): (s["arguments"][0][0], s["resps"])
        for task, samples in results["samples"].items()
        for s in samples
    }


def test_killed_and_resumed_run_matches_an_uninterrupted_one(offline, tmp_path: Path) -> None:
    """--use_cache keys each question on the history it was asked with: a run killed
    after 3 dialogue steps and resumed on its cache asks only the rest, with the same prompts
    and answers as an uninterrupted run."""
    cache = str(tmp_path / "cache")
    with pytest.raises(Killed):
        _evaluate(ScriptedLM(die_at_call=4), use_cache=cache)
    resumed_lm = ScriptedLM()
    resumed = _answers(_evaluate(resumed_lm, use_cache=cache))
    whole = _answers(_evaluate(ScriptedLM()))
    assert resumed == whole
    # 3 steps of 6 dialogues (3 per task) came from the cache.
    assert len(resumed_lm.asked) == len(whole) - 3 * 6
