"""Scores of the MERA groups: one headline number per modality, per access level and overall.

lm-eval 0.4.13 aggregates a group by averaging one same-named metric over the group's *leaf*
tasks, flattening nested groups, and cannot skip a task that has no value. MERA needs more:

- ``score`` of ``mera_multimodal``, ``mera_image``, ``mera_audio``, ``mera_video``,
  ``mera_public``, ``mera_private`` (:func:`macro_over_datasets`): the unweighted mean over the
  group's **datasets** of each dataset's score. A dataset is a task, or a science group
  (``runaturalsciencevqa``, ``schoolsciencevqa``, ``unisciencevqa``), whose score is the mean
  of its subtasks' scores weighted by how many samples each scored (a micro average over the
  dataset's items, as the original's size-weighted group did). A task's score is the mean of
  its ``score_metrics`` (``exact_match_norm``; ruSLUn: the mean of ``intent_em`` and
  ``slot_f1``; see ``tasks/scoring.py``). Every dataset counts once, whatever its size.
- the science groups' ``exact_match``/``exact_match_norm`` (:func:`weighted_mean_over_tasks`):
  size-weighted as in the original, the weight being the samples each subtask scored;
- ``n_scored`` and ``n_failed`` of every group (:func:`sum_over_tasks`).

A dataset or subtask without a score (every request failed, or no gold answers) is left out of
the mean, never averaged as 0; a group with nothing to average has no score (``None``).

Group YAMLs choose these by naming the function as the ``aggregation`` of an
``aggregate_metric_list`` entry (``aggregation: !function lm_eval_patches.groups.sum_over_tasks``).
lm-eval accepts a callable there but does not apply it; :func:`install` (run by the start-up
hook once ``lm_eval.api.group`` is imported) makes ``Group.aggregate`` apply ours and leaves
every other entry and group to lm-eval.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# Attribute that marks our group aggregations (functions of group, metric, task results).
MARK = "mera_group_aggregation"
GroupAggregation = Callable[[Any, str, dict[str, dict[str, Any]]], Any]


def _ours(fn: GroupAggregation) -> GroupAggregation:
    setattr(fn, MARK, True)
    return fn


def metric_value(result: dict[str, Any], metric: str) -> float | None:
    """``metric`` of one task's results under whichever filter it was scored (MERA tasks have
    one filter each); None when absent or without a value (None, NaN, "N/A")."""
    for key, value in result.items():
        name, _, _filter = key.partition(",")
        if name == metric and _filter:
            if isinstance(value, (int, float)) and not math.isnan(value):
                return float(value)
            return None
    return None


def task_score(task: Any, result: dict[str, Any] | None) -> float | None:
    """A task's score: the mean of its ``scoring.score_metrics``; None when one is missing."""
    scoring = getattr(task, "scoring", None)
    if result is None or scoring is None:
        return None
    values = [metric_value(result, name) for name in scoring.score_metrics]
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _weight(result: dict[str, Any]) -> float:
    scored = metric_value(result, "n_scored")
    return scored if scored is not None else float(result.get("sample_len", 0))


def _weighted_mean(pairs: list[tuple[float | None, float]]) -> float | None:
    pairs = [(v, w) for v, w in pairs if v is not None and w > 0]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _leaves(group: Any, task_metrics: dict[str, dict[str, Any]]) -> list[tuple[Any, dict]]:
    seen, leaves = set(), []
    for task in group.get_all_tasks():
        if task.task_name not in seen and task.task_name in task_metrics:
            seen.add(task.task_name)
            leaves.append((task, task_metrics[task.task_name]))
    return leaves


@_ours
def sum_over_tasks(group: Any, metric: str, task_metrics: dict[str, dict[str, Any]]) -> int:
    """The sum of ``metric`` over the group's tasks (``n_scored``, ``n_failed``)."""
    return int(sum(metric_value(r, metric) or 0 for _, r in _leaves(group, task_metrics)))


@_ours
def weighted_mean_over_tasks(
    group: Any, metric: str, task_metrics: dict[str, dict[str, Any]]
) -> float | None:
    """Mean of ``metric`` over the group's tasks that have it, weighted by samples scored."""
    return _weighted_mean(
        [(metric_value(r, metric), _weight(r)) for _, r in _leaves(group, task_metrics)]
    )


def _is_suite(group: Any) -> bool:
    return any(
        getattr(c.aggregation, "__name__", "") == "macro_over_datasets"
        for c in group.aggregate_metric_list or []
    )


def datasets_of(group: Any) -> list[Any]:
    """The group's datasets: its tasks and science groups, looking inside nested suite groups
    (``mera_multimodal`` holds ``mera_image``...); each once, in order."""
    units: dict[str, Any] = {}
    for child in group:
        if hasattr(child, "get_all_tasks") and _is_suite(child):
            for unit in datasets_of(child):
                units.setdefault(_name(unit), unit)
        else:
            units.setdefault(_name(child), child)
    return list(units.values())


def _name(item: Any) -> str:
    return str(getattr(item, "task_name", None) or item.name)


def dataset_score(unit: Any, task_metrics: dict[str, dict[str, Any]]) -> float | None:
    """A dataset's score: its task's score, or a science group's size-weighted mean."""
    if hasattr(unit, "get_all_tasks"):
        return _weighted_mean(
            [(task_score(t, r), _weight(r)) for t, r in _leaves(unit, task_metrics)]
        )
    return task_score(unit, task_metrics.get(unit.task_name))


@_ours
def macro_over_datasets(
    group: Any, metric: str, task_metrics: dict[str, dict[str, Any]]
) -> float | None:
    """The group's score: the unweighted mean of its datasets' scores (module docstring)."""
    scores = {_name(u): dataset_score(u, task_metrics) for u in datasets_of(group)}
    scored = [s for s in scores.values() if s is not None]
    missing = [name for name, s in scores.items() if s is None]
    if scored and missing:
        log.warning(
            "group %s: %s is the mean of %d of %d datasets; no score for %s",
            group.name,
            metric,
            len(scored),
            len(scores),
            ", ".join(missing),
        )
    return sum(scored) / len(scored) if scored else None


def install(group_module: ModuleType) -> None:
    """Make ``lm_eval.api.group.Group.aggregate`` apply our marked aggregations (idempotent)."""
    group_cls = group_module.Group
    if getattr(group_cls, "_mera_aggregation_installed", False):
        return
    original = group_cls.aggregate

    def aggregate(self: Any, task_metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        configs = list(self.aggregate_metric_list or [])
        ours = [c for c in configs if getattr(c.aggregation, MARK, False)]
        if not ours:
            return original(self, task_metrics)
        self.aggregate_metric_list = [c for c in configs if c not in ours]
        try:
            result = dict(original(self, task_metrics))
        finally:
            self.aggregate_metric_list = configs
        result.setdefault(
            "sample_len", sum(r.get("sample_len", 0) for _, r in _leaves(self, task_metrics))
        )
        for config in ours:
            filter_name = (config.filter_list or ["none"])[0]
            result[f"{config.metric},{filter_name}"] = config.aggregation(
                self, config.metric, task_metrics
            )
        return result

    group_cls.aggregate = aggregate
    group_cls._mera_aggregation_installed = True
