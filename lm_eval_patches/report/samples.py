"""The report's sample browser data: one row per (task, doc) across runs, and their media.

Media are found by the descriptors in the logged docs (split, row, sha256) in the dataset the
task reads, through the project's own loading (``MERA_DATA_DIR`` mirror first) and MediaRef;
the bytes' hash must equal the logged one, else the item shows a note instead of wrong media.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from lm_eval_patches import metrics
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.report import media as embed
from lm_eval_patches.report.collect import RunView
from lm_eval_patches.rescore import TaskPack
from lm_eval_patches.tasks.data import DatasetSourceError, LoadedDataset, load_described, media_ref

log = logging.getLogger(__name__)


def sample_metric(pack: TaskPack, task: str) -> str:
    """The per-doc metric that says right or wrong (EM, or intent EM for ruSLUn)."""
    names = [m for m in pack.tasks[task].aggregations if not m.startswith("group_")]
    return names[0] if names else "exact_match"


def _verdict(value: Any) -> int | None:
    if isinstance(value, tuple | list):  # a group metric's (group id, correct)
        value = value[1]
    if value is None:
        return None
    return 1 if float(value) >= 1.0 else 0


def _answer(sample: dict[str, Any]) -> str:
    resps = sample.get("resps") or [[]]
    first = resps[0][0] if resps and resps[0] else ""
    return str(first)


def _prompt(sample: dict[str, Any]) -> str:
    args = (sample.get("arguments") or {}).get("gen_args_0") or {}
    return str(args.get("arg_0", ""))


class MediaResolver:
    """Loads each task's dataset once (mirror first) and turns descriptors into data URLs."""

    def __init__(self, pack: TaskPack) -> None:
        self.pack = pack
        self._loaded: dict[tuple[str, str | None], LoadedDataset | None] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []

    def _dataset(self, task: str) -> LoadedDataset | None:
        config = self.pack.tasks[task].config
        key = (str(config.get("dataset_path")), config.get("dataset_name"))
        if key not in self._loaded:
            try:
                self._loaded[key] = load_described(task, key[0], key[1])
            except (DatasetSourceError, OSError, ValueError) as exc:
                self.problems.append(f"task {task}: media not shown ({exc})")
                self._loaded[key] = None
        return self._loaded[key]

    def add(self, task: str, doc: dict[str, Any], doc_label: str) -> list[str]:
        """Keys (sha256) of the doc's media, each embedded once; problems are noted."""
        keys = []
        for name, value in (doc.get("inputs") or {}).items():
            if not (isinstance(value, dict) and value.get("kind") and value.get("sha256")):
                continue
            sha = value["sha256"]
            keys.append(sha)
            if sha in self.media:
                continue
            self.media[sha] = self._embed(task, name, value, doc_label)
        return keys

    def _embed(self, task: str, field: str, descriptor: dict, doc_label: str) -> dict[str, Any]:
        kind = descriptor["kind"]
        loaded = self._dataset(task)
        where = f"task {task}, doc {doc_label}, field inputs.{field}"
        if loaded is None:
            return {"kind": kind, "note": "dataset not available here (set MERA_DATA_DIR)"}
        try:
            ref = media_ref(loaded, descriptor, field, where)
            if hashlib.sha256(ref.read_bytes()).hexdigest() != descriptor["sha256"]:
                self.problems.append(f"{where}: the dataset's bytes differ from the logged hash")
                return {"kind": kind, "note": "the dataset here differs from the run's"}
            if kind == "image":
                return {"kind": kind, "src": [embed.image_thumbnail(ref)]}
            if kind == "video":
                return {"kind": kind, "src": embed.video_frames(ref)}
            return {"kind": kind, "src": [embed.audio_clip(ref)]}
        except (MediaError, KeyError, IndexError, OSError, ValueError) as exc:
            self.problems.append(f"{where}: {exc}")
            return {"kind": kind, "note": f"cannot show: {exc}"}


def build_samples(
    runs: list[RunView],
    pack: TaskPack,
    skills_of: Callable[[str], list[int]],
    max_per_task: int,
    resolver: MediaResolver | None,
) -> list[dict[str, Any]]:
    """Rows for the browser: task, doc id, skill indexes, prompt, gold, per-run answers and
    right (1) / wrong (0) / unscored (None), media keys. At most ``max_per_task`` per task."""
    rows = []
    tasks = sorted({t for run in runs for t in run.scores})
    for task in tasks:
        metric = sample_metric(pack, task)
        per_run = []
        for run in runs:
            records = run.scores.get(task)
            per_run.append({r["doc_id"]: r for r in records.docs} if records else {})
        doc_ids = sorted({d for records in per_run for d in records})[:max_per_task]
        for doc_id in doc_ids:
            first = next(records[doc_id] for records in per_run if doc_id in records)
            doc = first["doc"]
            label = str((doc.get("meta") or {}).get("id", doc_id))
            golds = [g for g in metrics.parse_golds(doc.get("outputs")) if g.strip()]
            row = {
                "task": task,
                "doc": label,
                "skills": skills_of(task),
                "prompt": _prompt(first["sample"]),
                "gold": " | ".join(golds),
                "answers": [_answer(r[doc_id]["sample"]) if doc_id in r else None for r in per_run],
                "right": [
                    _verdict(r[doc_id]["scores"].get(metric)) if doc_id in r else None
                    for r in per_run
                ],
                "judge": [run.verdicts.get(task, {}).get(str(doc_id)) for run in runs],
                "media": resolver.add(task, doc, label) if resolver else [],
            }
            rows.append(row)
    return rows
