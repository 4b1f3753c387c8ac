"""What the report shows, gathered from runs' logs: scores per task, dataset, modality and
skill, and the samples (prompt, gold, each run's answer, right or wrong) with their media.

Task scores come from the run's ``scores_<date>.json`` (``mera-mm score``, judge included) when
there is one, else they are computed from the samples logs the same way (so ``--predict_only``
runs get scores too). Per-sample right/wrong comes from the task's own scoring path
(``rescore.score_task``), so it agrees with the scores.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from lm_eval_patches.judge_scores import GROUP_JS, JS
from lm_eval_patches.rescore import TaskPack, TaskScores, aggregate_task, score_task
from lm_eval_patches.runlogs import RunLogs
from lm_eval_patches.skills import Taxonomy

log = logging.getLogger(__name__)

BASELINE_MODEL = "mera-baseline"


def score_metrics(pack: TaskPack, task: str) -> list[str]:
    """The metrics whose mean is the task's score, as the MERA group scores define it
    (``tasks.scoring.ScoringOptions.score_metrics``: ``exact_match_norm``; ruSLUn: the mean of
    ``intent_em`` and ``slot_f1``), so the report and the results table agree."""
    return list(pack.tasks[task].options.score_metrics)


def judge_metric(pack: TaskPack, task: str) -> str:
    """The judge metric that goes with the headline one."""
    return GROUP_JS if pack.tasks[task].options.group_by else JS


def _score(entry: dict[str, Any], metrics: list[str]) -> float | None:
    values = [_value(entry, metric) for metric in metrics]
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _weight(entry: dict[str, Any]) -> float:
    """Samples the task scored (``n_scored``), as the group scores weigh subtasks."""
    scored = _value(entry, "n_scored")
    return scored if scored is not None else float(entry.get("sample_len", 0) or 0)


def _value(entry: dict[str, Any], metric: str) -> float | None:
    for key, value in entry.items():
        if key.split(",")[0] == metric and "_stderr" not in key and isinstance(value, int | float):
            return None if isinstance(value, float) and math.isnan(value) else float(value)
    return None


@dataclass
class RunView:
    """One run as the report sees it."""

    label: str
    logs: RunLogs
    results: dict[str, dict[str, Any]]  # task -> entry (re-scored file when present)
    source: str  # which file the scores come from
    scores: dict[str, TaskScores] = field(default_factory=dict)
    is_baseline: bool = False
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)  # judge, per task and doc


def load_run(logs: RunLogs, pack: TaskPack, label: str | None = None) -> RunView:
    """Scores and per-sample results of one run (tasks not in the pack are skipped, logged)."""
    scores_path = logs.folder / f"scores_{logs.date}.json"
    saved, verdicts = None, {}
    if scores_path.is_file():
        scored = json.loads(scores_path.read_text(encoding="utf-8"))
        saved = scored.get("results", {})
        verdicts = (scored.get("mera_score", {}).get("judge") or {}).get("verdicts") or {}
    source = scores_path.name if saved is not None else f"re-scored {logs.results_path.name}"
    view = RunView(label or logs.name, logs, dict(saved or {}), source, verdicts=verdicts)
    view.is_baseline = logs.results.get("model_name") == BASELINE_MODEL or (
        BASELINE_MODEL in str(logs.results.get("config", {}).get("model", ""))
    )
    for task in sorted(logs.samples_paths):
        if task not in pack.tasks:
            log.warning("report: task %s is not in the task pack; its samples are skipped", task)
            continue
        view.scores[task] = score_task(pack.tasks[task], list(logs.samples(task)))
        if saved is None:  # scored now, like `mera-mm score` (a --predict_only run has no metrics)
            view.results[task] = aggregate_task(view.scores[task], bootstrap_iters=0)
    return view


def task_modalities(scores: TaskScores) -> list[str]:
    """Media kinds the task's logged docs carry (image, audio, video)."""
    kinds: set[str] = set()
    for record in scores.docs[:50]:
        for value in (record["doc"].get("inputs") or {}).values():
            if isinstance(value, dict) and value.get("kind") in ("image", "audio", "video"):
                kinds.add(value["kind"])
    return sorted(kinds)


@dataclass
class ScoreTables:
    """Rows of the score tables; each value list has one entry per run (None: not run)."""

    tasks: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    modalities: list[dict[str, Any]]
    skills: list[dict[str, Any]]


def _mean(values: list[float | None], weights: list[int] | None = None) -> float | None:
    pairs = [
        (v, w) for v, w in zip(values, weights or [1] * len(values), strict=True) if v is not None
    ]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if pairs and total else None


def score_tables(runs: list[RunView], pack: TaskPack, taxonomy: Taxonomy) -> ScoreTables:
    """Task rows (the task's score and judge metric), then datasets (weighted by samples scored
    over their tasks), modalities, overall and skills (plain means over the datasets that have
    them): the definitions of the MERA group scores (``lm_eval_patches.groups``)."""
    tasks = sorted({t for run in runs for t in run.scores})
    task_rows = []
    for task in tasks:
        metrics, judge = score_metrics(pack, task), judge_metric(pack, task)
        some = next(run.scores[task] for run in runs if task in run.scores)
        task_rows.append(
            {
                "task": task,
                "dataset": pack.tasks[task].dataset_path,
                "modalities": task_modalities(some),
                "metric": " + ".join(metrics),
                "values": [_score(run.results.get(task, {}), metrics) for run in runs],
                "judge": [_value(run.results.get(task, {}), judge) for run in runs],
                "sizes": [_weight(run.results.get(task, {})) for run in runs],
            }
        )
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in task_rows:
        by_dataset[row["dataset"]].append(row)
    dataset_rows = []
    for dataset, rows in sorted(by_dataset.items()):
        values = []
        for i in range(len(runs)):
            weights = [row["sizes"][i] for row in rows]
            values.append(_mean([row["values"][i] for row in rows], weights))
        modalities = sorted({m for row in rows for m in row["modalities"]})
        dataset_rows.append(
            {
                "dataset": dataset,
                "tasks": [r["task"] for r in rows],
                "modalities": modalities,
                "values": values,
                "skills": list(taxonomy.dataset_skills(dataset)),
            }
        )
    modality_rows = []
    for modality in ("image", "audio", "video"):
        rows = [r for r in dataset_rows if modality in r["modalities"]]
        if rows:
            modality_rows.append(
                {
                    "modality": modality,
                    "datasets": len(rows),
                    "values": [_mean([r["values"][i] for r in rows]) for i in range(len(runs))],
                }
            )
    if dataset_rows:  # as mera_multimodal: every dataset once, whatever its modality
        modality_rows.append(
            {
                "modality": "all",
                "datasets": len(dataset_rows),
                "values": [_mean([r["values"][i] for r in dataset_rows]) for i in range(len(runs))],
            }
        )
    skill_rows = []
    for skill in taxonomy.skills():
        rows = [r for r in dataset_rows if skill.name in r["skills"]]
        if rows:
            skill_rows.append(
                {
                    "skill": skill.name,
                    "top": skill.path[0],
                    "datasets": len(rows),
                    "values": [_mean([r["values"][i] for r in rows]) for i in range(len(runs))],
                }
            )
    return ScoreTables(task_rows, dataset_rows, modality_rows, skill_rows)
