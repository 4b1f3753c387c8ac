"""Prompt snapshots (lmms-eval style): test doc 0 of every MERA Multi task, rendered in-process.

For each leaf task (those added with ``mera-mm new-task`` included),
``tests/snapshots/prompts/<task>.json`` holds what ``lm_eval_patches.tasks.snapshot.render``
makes of it: the exact prompt, the target and the media list (kind, mime, name, sha256).
``tests/snapshots/chat/weird.json`` holds one chat-templated context (``fewshot_context`` with
mera-baseline's ``apply_chat_template``).
Run with ``MERA_UPDATE_SNAPSHOTS=1`` to rewrite the snapshots instead of comparing.

The snapshots rely on fixture builds being byte-for-byte reproducible, which
``test_fixture_builds_are_reproducible`` checks.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import ALL_TASKS, CONTRIBUTED_TASKS, STANDALONE_TASKS

from lm_eval_patches.fixtures.builder import FixtureOptions, build_records, select_specs
from lm_eval_patches.tasks.prompt import PLACEHOLDER_RE
from lm_eval_patches.tasks.snapshot import first_test_doc as _doc0
from lm_eval_patches.tasks.snapshot import render, snapshot_text

REPO = Path(__file__).resolve().parents[1]
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
PROMPTS = SNAPSHOTS / "prompts"
CHAT = SNAPSHOTS / "chat"

MERA_TASKS = ALL_TASKS + STANDALONE_TASKS
TASKS = MERA_TASKS + CONTRIBUTED_TASKS  # plus tasks added with `mera-mm new-task`
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def updating() -> bool:
    """Read at run time, so one session can rewrite the snapshots."""
    return os.environ.get("MERA_UPDATE_SNAPSHOTS") == "1"


def check_snapshot(path: Path, data: dict) -> None:
    """Compare ``data`` with the stored snapshot, or rewrite it when updating."""
    text = snapshot_text(data)
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path.relative_to(REPO)}; run with MERA_UPDATE_SNAPSHOTS=1")
    stored = json.loads(path.read_text(encoding="utf-8"))
    current = json.loads(text)
    # The prompt first: its diff is the one that matters most and reads best on its own.
    assert current.get("prompt", current.get("context")) == stored.get(
        "prompt", stored.get("context")
    ), f"{path.name}: prompt changed (MERA_UPDATE_SNAPSHOTS=1 rewrites it)"
    assert current == stored, f"{path.name} changed (MERA_UPDATE_SNAPSHOTS=1 rewrites it)"


@pytest.fixture(scope="module")
def manager():
    import lm_eval.tasks

    return lm_eval.tasks.TaskManager(
        include_path=str(REPO / "multimodal_tasks"), include_defaults=False
    )


@pytest.fixture(scope="module")
def tasks(mirror: Path, manager) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERA_DATA_DIR", str(mirror))
        return manager.load(TASKS)["tasks"]


def test_task_list_is_every_leaf_task(manager) -> None:
    leaves = {
        name
        for name, entry in manager.task_index.items()
        if "multimodal_tasks" in str(getattr(entry, "yaml_path", ""))
        and entry.kind.name.endswith("TASK")
    }
    assert leaves == set(TASKS)
    assert len(MERA_TASKS) == len(set(MERA_TASKS)) == 34
    assert not set(MERA_TASKS) & set(CONTRIBUTED_TASKS)


@pytest.mark.parametrize("name", TASKS)
def test_prompt_snapshot(tasks: dict, name: str) -> None:
    task = tasks[name]
    snap = render(task)
    doc = _doc0(task)
    prompt = snap["prompt"]
    # Sanity that does not depend on the stored file.
    assert CYRILLIC.search(prompt) and "\ufffd" not in prompt
    slots = PLACEHOLDER_RE.findall(prompt)
    assert len(slots) == len(snap["media"]) >= 1, (slots, snap["media"])
    assert [kind for kind, _ in slots] == [m["kind"] for m in snap["media"]]
    text_fields = [k for k, v in doc["inputs"].items() if not isinstance(v, dict)]
    for field in text_fields:
        assert "{" + field + "}" not in prompt, f"unfilled slot {{{field}}}"
    descriptors = {v["sha256"] for v in doc["inputs"].values() if isinstance(v, dict)}
    assert {m["sha256"] for m in snap["media"]} <= descriptors
    assert all(m["mime"] and m["mime"].startswith(m["kind"] + "/") for m in snap["media"])
    assert snap["target"] not in (None, "", [])
    check_snapshot(PROMPTS / f"{name}.json", snap)


def test_rumathvqa_keeps_literal_braces(tasks: dict) -> None:
    prompt = render(tasks["rumathvqa"])["prompt"]
    assert "например {5}." in prompt and "{annotation}" not in prompt


def test_aquaria_numbered_slots_in_order(tasks: dict) -> None:
    snap = render(tasks["aquaria"])
    prompt = snap["prompt"]
    assert prompt.index("<audio_1>") < prompt.index("<audio_2>")
    names = [m["name"] for m in snap["media"]]
    assert [n.rsplit("_", 1)[-1] for n in names] == ["1.wav", "2.wav"]


def test_chat_templated_context_snapshot(tasks: dict) -> None:
    import lm_eval_patches.models.baseline as baseline

    task = tasks["weird"]
    doc = _doc0(task)
    context = task.fewshot_context(
        doc,
        num_fewshot=0,
        apply_chat_template=True,
        chat_template=baseline.MeraBaselineLM().apply_chat_template,
    )
    assert isinstance(context, str)
    assert context == f"user: {task.doc_to_text(doc)}\nassistant:"
    check_snapshot(
        CHAT / "weird.json", {"task": "weird", "doc_id": doc["meta"]["id"], "context": context}
    )


def test_no_stale_snapshots() -> None:
    if updating():
        pytest.skip("rewriting snapshots")
    stored = {p.stem for p in PROMPTS.glob("*.json")}
    assert stored == set(TASKS), stored ^ set(TASKS)
    assert {p.name for p in CHAT.glob("*.json")} == {"weird.json"}


def test_fixture_builds_are_reproducible() -> None:
    (spec,) = select_specs(["WEIRD"])

    def image_bytes() -> list[bytes]:
        records = build_records(spec, None, FixtureOptions())
        return [r["inputs"]["image"]["bytes"] for split in records.values() for r in split]

    first, second = image_bytes(), image_bytes()
    assert any(b.startswith(b"\xff\xd8\xff") for b in first)  # some are JPEG
    assert first == second
