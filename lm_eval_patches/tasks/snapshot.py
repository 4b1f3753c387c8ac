"""Prompt snapshots: test doc 0 of a task as JSON (``tests/snapshots/prompts/<task>.json``).

One implementation, used by the prompt snapshot test (``tests/test_prompts.py``) and by
``mera-mm new-task`` (which writes the new task's first snapshot from its fixture data). A
snapshot holds the exact prompt (``task.doc_to_text``), the target, and each media part's kind,
mime, name and sha256 (``MediaRef`` from ``task.doc_media``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def first_test_doc(task: Any) -> dict:
    """Test doc 0 of an lm-eval task."""
    return next(iter(task.test_docs()))


def render(task: Any) -> dict:
    """The snapshot of ``task`` (a loaded lm-eval task of the pack) for its test doc 0."""
    doc = first_test_doc(task)
    return {
        "task": task.config.task,
        "doc_id": doc["meta"]["id"],
        "prompt": task.doc_to_text(doc),
        "target": task.doc_to_target(doc),
        "media": [
            {"kind": r.kind, "mime": r.mime, "name": r["name"], "sha256": r.sha256}
            for r in task.doc_media(doc)
        ],
    }


def snapshot_text(data: dict) -> str:
    """The stored form of a snapshot: sorted, indented JSON, Cyrillic kept as is."""
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_task_snapshot(
    tasks_dir: str | Path, task_name: str, dataset: str, out_dir: str | Path
) -> Path:
    """Build ``dataset``'s fixture data (default options, as the test session's mirror), render
    ``task_name`` from the pack ``tasks_dir`` and write ``<out_dir>/<task_name>.json``.

    Raises:
        ValueError: the dataset has no fixture spec in the pack or the built-in sets.
    """
    import lm_eval.tasks

    from lm_eval_patches.fixtures.builder import build_fixtures

    with tempfile.TemporaryDirectory(prefix="mera-snapshot-") as mirror:
        build_fixtures(mirror, [dataset], include_paths=[tasks_dir])
        saved = os.environ.get("MERA_DATA_DIR")
        os.environ["MERA_DATA_DIR"] = mirror  # read when the task loads its docs
        try:
            manager = lm_eval.tasks.TaskManager(include_path=str(tasks_dir), include_defaults=False)
            task = manager.load([task_name])["tasks"][task_name]
            text = snapshot_text(render(task))
        finally:
            if saved is None:
                os.environ.pop("MERA_DATA_DIR", None)
            else:
                os.environ["MERA_DATA_DIR"] = saved
    out = Path(out_dir) / f"{task_name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
