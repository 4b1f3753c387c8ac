"""MeraTask machinery on bad inputs: every error names the task, the doc (meta.id) and the field.

One WEIRD variant is written into a temporary mirror with three test docs broken on purpose
(a corrupt image, a prompt with two ``<image>`` slots for one image, an image cell that is
None); one in-process ``mera-baseline`` run over it checks that the run goes on. The rest are
direct checks of dataset loading, prompt filling and placeholder ordering.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import huggingface_hub.constants
import pytest
from conftest import write_variant

import lm_eval_patches
from lm_eval_patches.failures import (
    BUILD_ERROR_KEY,
    FAILURES,
    failed_at_build,
    failure_reason,
    is_failure,
)
from lm_eval_patches.fixtures.builder import FixtureOptions, select_specs, write_dataset
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.tasks.data import DatasetSourceError, load_source
from lm_eval_patches.tasks.prompt import fill_instruction, order_fields_by_placeholders
from lm_eval_patches.tasks.task import MeraTask

REPO = Path(__file__).resolve().parents[1]
TASKS_DIR = REPO / "multimodal_tasks"

# Test-split indices of the broken WEIRD docs (ids are 4 + index: 3 shots come first).
CORRUPT, TWO_SLOTS, NO_IMAGE = 1, 3, 5


def _corrupt_image(record: dict) -> None:
    data = record["inputs"]["image"]["bytes"]
    record["inputs"]["image"] = {**record["inputs"]["image"], "bytes": data[: len(data) // 3]}


def _two_slots(record: dict) -> None:
    record["instruction"] = record["instruction"].replace("<image>", "<image> и <image>", 1)


def _no_image(record: dict) -> None:
    record["inputs"]["image"] = None


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Hub offline in the live config values too (datasets reads the env once at import)."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return monkeypatch


def _manager():
    import lm_eval.tasks

    return lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A mirror with the broken WEIRD, its live task, and one baseline run over it."""
    import lm_eval

    mirror = tmp_path_factory.mktemp("broken-mirror")
    ids = write_variant(
        "WEIRD", {CORRUPT: _corrupt_image, TWO_SLOTS: _two_slots, NO_IMAGE: _no_image}, mirror
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERA_DATA_DIR", str(mirror))
        lm_eval_patches.register()
        task = _manager().load(["weird"])["tasks"]["weird"]
        FAILURES.items.clear()
        results = lm_eval.simple_evaluate(
            model="mera-baseline", tasks=["weird"], task_manager=_manager(), log_samples=True
        )
        failures = list(FAILURES.items)
        FAILURES.items.clear()
    docs = {doc["meta"]["id"]: doc for doc in task.test_docs()}
    return {"task": task, "ids": ids, "docs": docs, "results": results, "failures": failures}


def _doc(broken: dict, index: int) -> dict:
    return broken["docs"][broken["ids"][index]]


def _request(task: MeraTask, doc: dict, doc_id: int = 0):
    return task.construct_requests(doc, task.doc_to_text(doc), metadata=("weird", doc_id, 1))


def _failure_for(broken: dict, index: int):
    doc_id = str(broken["ids"][index])
    found = [f for f in broken["failures"] if f.doc == doc_id]
    assert len(found) == 1, broken["failures"]
    assert found[0].task == "weird"
    return found[0]


def _assert_names(message: str, doc_id: int, field: str) -> None:
    assert "task weird" in message, message
    assert f"doc {doc_id}," in message or message.endswith(f"doc {doc_id}"), message
    assert f"field {field}" in message, message


# -- a corrupt image --------------------------------------------------------------------------
def test_corrupt_image_error_names_task_doc_and_field(broken: dict) -> None:
    task, doc = broken["task"], _doc(broken, CORRUPT)
    (ref,) = task.doc_media(doc)  # building the reference reads nothing
    assert ref.mime in ("image/png", "image/jpeg")  # the header survived: only decoding fails
    with pytest.raises(MediaError) as info:
        ref.as_pil()
    _assert_names(str(info.value), broken["ids"][CORRUPT], "inputs.image")
    assert "cannot decode image" in str(info.value)


def test_baseline_scores_every_doc_without_decoding(broken: dict) -> None:
    samples = broken["results"]["samples"]["weird"]
    assert len(samples) == 8
    by_id = {s["doc"]["meta"]["id"]: s for s in samples}
    corrupt = by_id[broken["ids"][CORRUPT]]
    # The corrupt image never gets decoded: a normal request, a normal letter answer.
    assert BUILD_ERROR_KEY not in corrupt["arguments"][0][2]
    assert corrupt["filtered_resps"][0] in ("A", "B")
    assert all(f.doc != str(broken["ids"][CORRUPT]) for f in broken["failures"])
    em = broken["results"]["results"]["weird"]["exact_match,none"]
    assert 0.0 <= em <= 1.0


# -- placeholders that do not match the media -------------------------------------------------
def test_extra_placeholder_marks_request_and_records_failure(broken: dict) -> None:
    task, doc = broken["task"], _doc(broken, TWO_SLOTS)
    doc_id = broken["ids"][TWO_SLOTS]
    assert task.doc_to_text(doc).count("<image>") == 2
    with pytest.raises(MediaError) as info:
        task.doc_media(doc)
    _assert_names(str(info.value), doc_id, "instruction")
    assert "more <image> placeholders than image media" in str(info.value)

    FAILURES.items.clear()
    instance = _request(task, doc)
    assert failed_at_build(instance.args)
    assert len(FAILURES.items) == 1
    recorded = FAILURES.items[0]
    FAILURES.items.clear()
    assert (recorded.task, recorded.doc) == ("weird", str(doc_id))
    _assert_names(recorded.reason, doc_id, "instruction")
    assert instance.args[2][BUILD_ERROR_KEY] == recorded.reason


def test_good_doc_request_is_not_marked(broken: dict) -> None:
    task = broken["task"]
    doc = broken["docs"][min(broken["docs"])]  # test doc 0 is intact
    FAILURES.items.clear()
    instance = _request(task, doc)
    assert not failed_at_build(instance.args)
    assert not FAILURES.items
    (ref,) = instance.args[2]["visual"]
    assert ref.sha256 == doc["inputs"]["image"]["sha256"]


def test_run_fails_only_the_broken_docs(broken: dict) -> None:
    samples = broken["results"]["samples"]["weird"]
    bad_ids = {broken["ids"][TWO_SLOTS], broken["ids"][NO_IMAGE]}
    assert {int(f.doc) for f in broken["failures"]} == bad_ids
    assert all(f.task == "weird" for f in broken["failures"])
    for sample in samples:
        doc_id = sample["doc"]["meta"]["id"]
        media = sample["arguments"][0][2]
        if doc_id in bad_ids:
            assert BUILD_ERROR_KEY in media
            # The failure answer carries the reason; the doc scores nothing and counts failed.
            assert is_failure(sample["filtered_resps"][0])
            assert failure_reason(sample["filtered_resps"][0]) == " ".join(
                media[BUILD_ERROR_KEY].split()
            )
            assert sample["exact_match"] is None and sample["exact_match_norm"] is None
            assert (sample["n_failed"], sample["n_scored"]) == (1, 0)
        else:
            assert BUILD_ERROR_KEY not in media and len(media["visual"]) == 1
            assert sample["filtered_resps"][0] in ("A", "B")
    # The task's metrics cover the answered docs only; the counts say so.
    result = broken["results"]["results"]["weird"]
    answered = [s["exact_match"] for s in samples if s["doc"]["meta"]["id"] not in bad_ids]
    assert (result["n_scored,none"], result["n_failed,none"]) == (len(samples) - 2, 2)
    assert result["exact_match,none"] == pytest.approx(sum(answered) / len(answered))


# -- a missing media cell in a task whose media is required -----------------------------------
def test_missing_image_cell_fails_its_request(broken: dict) -> None:
    task, doc = broken["task"], _doc(broken, NO_IMAGE)
    doc_id = broken["ids"][NO_IMAGE]
    assert doc["inputs"]["image"] is None
    FAILURES.items.clear()
    instance = _request(task, doc)
    failures = list(FAILURES.items)
    FAILURES.items.clear()
    assert failed_at_build(instance.args)
    assert [(f.task, f.doc) for f in failures] == [("weird", str(doc_id))]
    assert "task weird" in failures[0].reason and f"doc {doc_id}" in failures[0].reason


def test_missing_image_cell_error_names_the_field(broken: dict) -> None:
    task, doc = broken["task"], _doc(broken, NO_IMAGE)
    with pytest.raises(MediaError) as info:
        task.doc_media(doc)
    _assert_names(str(info.value), broken["ids"][NO_IMAGE], "inputs.image")


# -- unknown datasets and configs -------------------------------------------------------------
def test_unknown_dataset_names_the_task(mera_env: Path, offline: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetSourceError) as info:
        load_source("nosuch_task", "MERA-evaluation/NoSuch", None)
    message = str(info.value)
    assert "task nosuch_task" in message and "'MERA-evaluation/NoSuch'" in message


def test_unknown_dataset_names_the_mirror_searched(
    mera_env: Path, offline: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DatasetSourceError) as info:
        load_source("nosuch_task", "MERA-evaluation/NoSuch", None)
    assert str(mera_env) in str(info.value)


def test_unknown_config_lists_the_available_ones(mera_env: Path) -> None:
    with pytest.raises(DatasetSourceError) as info:
        load_source("botany_task", "MERA-evaluation/ruNaturalScienceVQA", "botany")
    message = str(info.value)
    assert "task botany_task" in message and "'botany'" in message
    for config in ("biology", "chemistry", "physics", "earth_science"):
        assert config in message


def _config(task: str, path: str, name: str | None = None) -> dict:
    config = {
        "task": task,
        "dataset_path": path,
        "output_type": "generate_until",
        "test_split": "test",
        "fewshot_split": "shots",
        "mera": {"answer": "letter"},
    }
    if name:
        config["dataset_name"] = name
    return config


def test_task_config_with_unknown_dataset(mera_env: Path, offline: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetSourceError, match="task nosuch_cfg_task: cannot load dataset"):
        MeraTask(config=_config("nosuch_cfg_task", "MERA-evaluation/NoSuch"))


def test_task_config_with_unknown_config(mera_env: Path) -> None:
    with pytest.raises(DatasetSourceError) as info:
        MeraTask(config=_config("uni_x", "MERA-evaluation/UniScienceVQA", "Astrology"))
    message = str(info.value)
    assert "task uni_x" in message and "'Astrology'" in message
    assert "Applied_Sciences" in message and "Health_and_Medicine" in message


# -- prompt filling ---------------------------------------------------------------------------
def test_literal_braces_survive_filling() -> None:
    template = 'Ответ в виде {"answer": число}, например {5}. {question} {x} {}'
    text = fill_instruction(template, {"question": "Сколько?"}, {})
    assert text == 'Ответ в виде {"answer": число}, например {5}. Сколько? {x} {}'


def test_unknown_and_media_slots_stay_and_none_is_empty() -> None:
    inputs = {"image": {"kind": "image", "sha256": "ab"}, "context": None, "q": 7}
    text = fill_instruction("{image}|{context}|{q}|{unknown}", inputs, {"image": "image"})
    assert text == "{image}||7|{unknown}"


def test_optional_image_absent_drops_slot_and_media(mera_env: Path) -> None:
    task = _manager().load(["rutie_vision_default"])["tasks"]["rutie_vision_default"]
    docs = list(task.test_docs())
    without = [d for d in docs if d["inputs"]["image"] is None]
    with_image = [d for d in docs if d["inputs"]["image"] is not None]
    assert without and with_image
    for doc in without:
        prompt = task.doc_to_text(doc)
        assert "<image>" not in prompt and "<context>" not in prompt
        assert doc["inputs"]["question"] in prompt
        assert task.doc_media(doc) == []
        FAILURES.items.clear()
        instance = task.construct_requests(doc, prompt, metadata=("rutie_vision_default", 0, 1))
        assert not failed_at_build(instance.args) and not FAILURES.items
        assert instance.args[2] == {}
    for doc in with_image:
        assert task.doc_to_text(doc).count("<image>") == 1
        assert len(task.doc_media(doc)) == 1


# -- numbered placeholders --------------------------------------------------------------------
def test_numbered_placeholders_set_the_order() -> None:
    present = {"audio_1": "audio", "audio_2": "audio"}
    assert order_fields_by_placeholders("<audio_2> then <audio_1>", present) == (
        ["audio_2", "audio_1"],
        None,
    )
    assert order_fields_by_placeholders("<audio_1> <audio_2>", present) == (
        ["audio_1", "audio_2"],
        None,
    )


def test_numbered_placeholder_problems_are_reported() -> None:
    ordered, problem = order_fields_by_placeholders(
        "<audio_1>", {"audio_1": "audio", "audio_2": "audio"}
    )
    assert ordered == ["audio_1"] and "inputs.audio_2" in problem
    ordered, problem = order_fields_by_placeholders("<audio_1> <audio_1>", {"audio_1": "audio"})
    assert ordered == ["audio_1"] and "more <audio> placeholders" in problem


def test_bare_placeholders_take_fields_of_their_kind_in_order() -> None:
    present = {"image": "image", "audio": "audio"}
    assert order_fields_by_placeholders("<audio> <image>", present) == (["audio", "image"], None)


# -- the mirror cache -------------------------------------------------------------------------
def _outputs(mirror: Path) -> list[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERA_DATA_DIR", str(mirror))
        return list(load_source("labtabvqa", "MERA-evaluation/LabTabVQA", None)["test"]["outputs"])


def test_two_mirrors_of_one_dataset_do_not_share_a_cache(tmp_path: Path) -> None:
    (spec,) = select_specs(["LabTabVQA"])
    public, private = tmp_path / "public", tmp_path / "private"
    write_dataset(spec, public, FixtureOptions())
    write_dataset(spec, private, FixtureOptions(private=True))
    golds = _outputs(public)
    assert len(golds) == 8 and all(g in "ABCDEFG" and g for g in golds)
    assert _outputs(private) == [""] * 8
    # The same folder rewritten in place must not be served from the first load's cache.
    write_dataset(spec, public, FixtureOptions(private=True))
    assert _outputs(public) == [""] * 8
    write_dataset(spec, public, FixtureOptions())
    assert _outputs(public) == golds


def test_fewshot_media_come_first_in_prompt_order(mera_env: Path) -> None:
    """With --num_fewshot N, the shots' images precede the doc's, one per <image> slot."""
    import lm_eval

    lm_eval_patches.register()
    results = lm_eval.simple_evaluate(
        model="mera-baseline",
        tasks=["weird"],
        num_fewshot=2,
        limit=2,
        task_manager=_manager(),
        log_samples=True,
    )
    assert results["configs"]["weird"]["num_fewshot"] == 2
    for row in results["samples"]["weird"]:
        context, _, media = row["arguments"][0]
        refs = media["visual"]
        assert len(refs) == 3 == context.count("<image>")
        assert refs[-1]["sha256"] == row["doc"]["inputs"]["image"]["sha256"]
        assert all(ref["sha256"] != refs[-1]["sha256"] for ref in refs[:-1])


def test_unknown_mera_option_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown key.*answr"):
        MeraTask(config={"task": "t", "dataset_path": "x", "mera": {"answr": "letter"}})


def test_failure_summary_counts_per_task() -> None:
    from lm_eval_patches.failures import FailureLog

    log = FailureLog()
    assert log.summary() == "no failed requests"
    log.record("weird", "5", "task weird, doc 5, field inputs.image: cannot decode image (x)")
    log.record("weird", "7", "task weird, doc 7, field inputs.image: cannot decode image (x)")
    log.record("aquaria", "3", "task aquaria, doc 3, field inputs.audio_2: no bytes")
    lines = log.summary().splitlines()
    assert lines[0] == "3 request(s) failed:"
    assert lines[1].startswith("  weird: 2 (e.g. task weird, doc 5")
    assert lines[2].startswith("  aquaria: 1 (e.g. task aquaria, doc 3")
