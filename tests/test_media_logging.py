"""Media in runs and logs: a huge or broken picture in the LOAD_OBJECT form is answered or fails
alone, and the samples log names media by one descriptor, never their bytes, whatever the form.

The same through a real CLI run (``LOAD_BASE64``, the huge case picture) is in test_hf_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TASKS_DIR, write_variant
from lm_eval.utils import handle_non_serializable
from tiny_models import build_tiny_llava

from lm_eval_patches.failures import FAILURES
from lm_eval_patches.media.forms import LOAD_SWITCHES

CASES = Path(__file__).parent / "cases"
HUGE = (CASES / "huge_20000x9000.png").read_bytes()
FORMS = (None, *LOAD_SWITCHES)
TASKS = ("weird", "ruenvaqa", "ruhhh_video")
KEYS = {"image": "visual", "audio": "audio", "video": "video"}


def _descriptors(doc: dict) -> list[dict]:
    return [v for v in doc["inputs"].values() if isinstance(v, dict) and v.get("sha256")]


@pytest.fixture(scope="module")
def tasks(mirror: Path) -> dict:
    import lm_eval.tasks

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERA_DATA_DIR", str(mirror))
        manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
        return manager.load(list(TASKS))["tasks"]


@pytest.mark.parametrize("form", FORMS)
def test_answered_requests_log_one_descriptor_per_media_whatever_the_form(
    tasks: dict, form: str | None, monkeypatch, tmp_path: Path
) -> None:
    for name in LOAD_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    if form:
        monkeypatch.setenv(form, "1")
    monkeypatch.setenv("LM_EVAL_MEDIA_DIR", str(tmp_path))
    for name in TASKS:
        task = tasks[name]
        docs = list(task.test_docs())[:3]
        task._instances = [
            task.construct_requests(doc, task.doc_to_text(doc), metadata=(name, i, 1))
            for i, doc in enumerate(docs)
        ]
        for instance in task._instances:
            instance.resps = ["ответ"]
        task.apply_filters()  # what lm-eval does after the model answered, before logging
        for doc, instance in zip(docs, task._instances, strict=True):
            logged = json.dumps(instance.args, default=handle_non_serializable)
            assert len(logged) < 2000 and "base64" not in logged, (name, form, logged[:200])
            (descriptor,) = _descriptors(doc)
            (media,) = instance.args[2][KEYS[descriptor["kind"]]]
            # One file, one hash: the lazy reference's sha256 of the source bytes.
            assert dict(media) == {
                "kind": descriptor["kind"],
                "sha256": descriptor["sha256"],
                "mime": descriptor["mime"],
                "name": descriptor["path"],
            }, (name, form)
            assert instance.filtered_resps  # filtering still happened


def _break_images(out: Path) -> dict[int, int]:
    """WEIRD with test doc 0's picture the 180 MP case and doc 1's not a picture at all."""

    def huge(record: dict) -> None:
        record["inputs"]["image"] = {**record["inputs"]["image"], "bytes": HUGE}

    def garbage(record: dict) -> None:
        record["inputs"]["image"] = {**record["inputs"]["image"], "bytes": b"GIF89a broken"}

    return write_variant("WEIRD", {0: huge, 1: garbage}, out)


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def test_load_object_huge_image_answered_and_broken_one_fails_alone(
    tiny_llava: Path, tmp_path: Path, monkeypatch
) -> None:
    """The LOAD_OBJECT form (PIL images, what third-party backends get) through hf-multimodal."""
    import lm_eval
    import lm_eval.tasks

    import lm_eval_patches

    ids = _break_images(tmp_path / "mirror")
    lm_eval_patches.register()
    monkeypatch.setenv("MERA_DATA_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("LOAD_OBJECT", "1")
    monkeypatch.setenv("MERA_IMAGE_MAX_PIXELS", "2000000")
    manager = lm_eval.tasks.TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    before = len(FAILURES.items)
    results = lm_eval.simple_evaluate(
        model="hf-multimodal",
        model_args={"pretrained": str(tiny_llava), "dtype": "float32", "device": "cpu"},
        tasks=["weird"],
        task_manager=manager,
        limit=3,
        log_samples=True,
        gen_kwargs="max_gen_toks=2",
    )
    failures = FAILURES.items[before:]
    assert [f.doc for f in failures] == [str(ids[1])]
    assert f"task weird, doc {ids[1]}, field inputs.image" in failures[0].reason
    assert "exact_match,none" in results["results"]["weird"]
    rows = {row["doc"]["meta"]["id"]: row for row in results["samples"]["weird"]}
    assert len(rows) == 3
    huge_row = rows[ids[0]]
    assert (
        huge_row["arguments"][0][2]["visual"][0]["sha256"]
        == (huge_row["doc"]["inputs"]["image"]["sha256"])
    )
    assert isinstance(huge_row["resps"][0][0], str)
