"""Scores from saved samples logs, without a model (``mera-mm score``).

For each task of a run, the task's current YAML (from the task pack) gives its filters, its
``mera.scoring`` options and its metric list; the logged raw responses (``resps``) go through
the same filter ensembles lm-eval builds, then through ``tasks.scoring.process_results`` (the
very function ``MeraTask.process_results`` calls), and the per-doc values are aggregated with
the aggregation functions registered with lm-eval, with lm-eval's stderr rules. Groups with an
``aggregate_metric_list`` are aggregated with lm-eval's own group helpers. So a re-score of an
unchanged pack reproduces the run's numbers exactly, and a fixed metric or filter applies to
old runs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_patches.runlogs import RunLogs

log = logging.getLogger(__name__)


@dataclass
class TaskSpec:
    """What scoring needs of one task, read from its YAML."""

    name: str
    config: dict[str, Any]
    options: Any  # tasks.scoring.ScoringOptions
    aggregations: dict[str, str]  # metric name -> registered aggregation name

    @property
    def dataset_path(self) -> str:
        return str(self.config.get("dataset_path", ""))

    def filter_ensembles(self) -> list:
        """lm-eval FilterEnsembles of the task (``take_first`` named ``none`` by default)."""
        from lm_eval.filters import build_filter_ensemble

        filter_list = self.config.get("filter_list")
        if not filter_list:
            return [build_filter_ensemble("none", [["take_first", None]])]
        ensembles = []
        for entry in filter_list:
            components = [
                [fn["function"], {k: v for k, v in fn.items() if k != "function"}]
                for fn in entry["filter"]
            ]
            ensembles.append(build_filter_ensemble(entry["name"], components))
        return ensembles


@dataclass
class TaskPack:
    """The task and group configs of a task pack folder (``--include_path``)."""

    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_pack(include_path: str | Path) -> TaskPack:
    """Index ``include_path`` with lm-eval's TaskManager (built-in tasks left out) and read
    each MERA task's YAML, includes merged and ``!function`` tags resolved."""
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    from lm_eval_patches.tasks.scoring import COUNT_METRICS, ScoringOptions

    manager = TaskManager(include_path=str(include_path), include_defaults=False)
    pack = TaskPack()
    for name, entry in manager.task_index.items():
        if entry.yaml_path is None:
            continue
        if entry.kind is Kind.GROUP:
            pack.groups[name] = load_yaml(entry.yaml_path, resolve_func=False)
        elif entry.kind in (Kind.TASK, Kind.PY_TASK):
            config = load_yaml(entry.yaml_path, resolve_func=True)
            aggregations = {
                m["metric"]: m.get("aggregation", "mean") for m in config.get("metric_list") or []
            }
            if "bypass" not in aggregations:  # MeraTask adds the counts to every task
                aggregations.update(dict.fromkeys(COUNT_METRICS, "mera_count"))
            options = ScoringOptions.from_dict((config.get("mera") or {}).get("scoring"))
            pack.tasks[name] = TaskSpec(name, config, options, aggregations)
    return pack


@dataclass
class TaskScores:
    """Per-doc values of one task, by (metric, filter key), plus each doc's record."""

    spec: TaskSpec
    values: dict[tuple[str, str], list[Any]] = field(default_factory=lambda: defaultdict(list))
    docs: list[dict[str, Any]] = field(default_factory=list)  # one per (doc, filter key)


def score_task(spec: TaskSpec, samples: list[dict[str, Any]]) -> TaskScores:
    """Filter and score the logged samples of one task with the task's own code."""
    from lm_eval.api.instance import Instance

    from lm_eval_patches.tasks.scoring import process_results

    by_doc: dict[int, dict[str, Any]] = {}
    for sample in samples:
        by_doc.setdefault(sample["doc_id"], sample)
    ordered = [by_doc[k] for k in sorted(by_doc)]
    instances = []
    for sample in ordered:
        inst = Instance(request_type="generate_until", doc=sample["doc"], arguments=(), idx=0)
        # The log keeps one list of responses per request; MERA docs make one request each.
        logged = sample.get("resps") or [[]]
        inst.resps = list(logged[0])
        instances.append(inst)
    out = TaskScores(spec)
    if not instances:
        return out
    ensembles = spec.filter_ensembles()
    for ensemble in ensembles:
        ensemble.apply(instances)
    for sample, inst in zip(ordered, instances, strict=True):
        for ensemble in ensembles:
            key = ensemble.name
            response = inst.filtered_resps[key]
            per_doc = process_results(spec.options, spec.aggregations, sample["doc"], [response])
            for metric, value in per_doc.items():
                out.values[(metric, key)].append(value)
            out.docs.append(
                {
                    "doc_id": sample["doc_id"],
                    "doc": sample["doc"],
                    "filter": key,
                    "response": response,
                    "scores": per_doc,
                    "sample": sample,
                }
            )
    return out


def aggregate_task(scores: TaskScores, bootstrap_iters: int) -> dict[str, Any]:
    """The task's entry of ``results`` the way lm-eval 0.4.13 aggregates it."""
    from lm_eval.api.metrics import stderr_for_metric
    from lm_eval.api.registry import get_aggregation

    entry: dict[str, Any] = {"name": scores.spec.name, "alias": scores.spec.name}
    sample_len = 0
    metrics: dict[str, Any] = {}
    for (metric, key), items in scores.values.items():
        agg_fn = get_aggregation(scores.spec.aggregations.get(metric, "mean"))
        metrics[f"{metric},{key}"] = agg_fn(items)
        sample_len = max(sample_len, len(items))
        stderr_fn = stderr_for_metric(agg_fn, bootstrap_iters) if bootstrap_iters > 0 else None
        metrics[f"{metric}_stderr,{key}"] = (
            stderr_fn(items) if stderr_fn and len(items) > 1 else "N/A"
        )
    entry["sample_len"] = sample_len
    entry.update(metrics)
    return entry


def leaf_tasks(group: str, pack: TaskPack, seen: frozenset[str] = frozenset()) -> list[str]:
    """Leaf task names of a group, nested groups expanded (in YAML order)."""
    out: list[str] = []
    for child in pack.groups.get(group, {}).get("task") or []:
        name = child if isinstance(child, str) else child.get("task", "")
        if name in pack.groups and name not in seen:
            out += leaf_tasks(name, pack, seen | {group})
        elif name:
            out.append(name)
    return out


def _group_function(aggregation: Any) -> Any:
    """The ``lm_eval_patches.groups`` function a group YAML names as an aggregation
    (``!function lm_eval_patches.groups.X``, read unresolved as a path ending in that name),
    or None for lm-eval's own aggregations."""
    from lm_eval_patches import groups

    if not isinstance(aggregation, str) or "lm_eval_patches.groups." not in aggregation:
        return None
    fn = getattr(groups, aggregation.rsplit(".", 1)[-1], None)
    return fn if getattr(fn, groups.MARK, False) else None


@dataclass
class _Leaf:
    """A task as ``lm_eval_patches.groups`` sees it: its name and scoring options."""

    task_name: str
    scoring: Any


@dataclass
class _Aggregation:
    metric: str
    aggregation: Any
    filter_list: list[str] | None = None


class _PackGroup:
    """A group of the pack with the surface ``lm_eval_patches.groups`` reads from lm-eval's
    ``Group`` (name, ``aggregate_metric_list``, children, ``get_all_tasks``), so a re-score
    aggregates groups with the very functions a run used."""

    def __init__(self, name: str, pack: TaskPack) -> None:
        self.name, self._pack = name, pack
        config = pack.groups.get(name, {})
        self.aggregate_metric_list = [
            _Aggregation(a["metric"], _group_function(a.get("aggregation")) or a.get("aggregation"))
            for a in config.get("aggregate_metric_list") or []
        ]
        self._children = [c if isinstance(c, str) else c.get("task", "") for c in config["task"]]

    def __iter__(self):
        for child in self._children:
            if child in self._pack.groups:
                yield _PackGroup(child, self._pack)
            elif child in self._pack.tasks:
                yield _Leaf(child, self._pack.tasks[child].options)

    def get_all_tasks(self) -> list[_Leaf]:
        tasks = self._pack.tasks
        return [_Leaf(t, tasks[t].options) for t in leaf_tasks(self.name, self._pack) if t in tasks]


def aggregate_group(
    group: str, pack: TaskPack, results: dict[str, dict[str, Any]], metrics: list[str]
) -> dict[str, Any] | None:
    """A group's entry from its subtasks' entries, as lm-eval's Group.aggregate computes it
    (``aggregate_subtask_metrics`` and ``pooled_sample_stderr``); None without aggregation.

    ``metrics`` adds metrics the YAML does not list (the judge score) with size weights.
    """
    from lm_eval.api.metrics import (
        aggregate_subtask_metrics,
        pooled_sample_stderr,
        unweighted_mean_stderr,
    )

    config = pack.groups.get(group, {})
    agg_list = list(config.get("aggregate_metric_list") or [])
    if not agg_list:
        return None
    agg_list += [{"metric": m, "weight_by_size": True} for m in metrics]
    leaves = [t for t in leaf_tasks(group, pack) if t in results]
    if not leaves:
        return None
    entry: dict[str, Any] = {"alias": group, "name": group}
    entry["sample_len"] = sum(results[t].get("sample_len", 0) for t in leaves)
    counts: dict[str, int] = {}
    for agg in agg_list:
        ours = _group_function(agg.get("aggregation"))
        if ours is not None:  # as the start-up hook makes lm-eval's Group.aggregate apply it
            filter_name = (agg.get("filter_list") or ["none"])[0]
            entry[f"{agg['metric']},{filter_name}"] = ours(
                _PackGroup(group, pack), agg["metric"], results
            )
            continue
        prefix = f"{agg['metric']},"
        filters = sorted(
            {k[len(prefix) :] for t in leaves for k in results[t] if k.startswith(prefix)}
        )
        for key in filters:
            metric_key, stderr_key = f"{agg['metric']},{key}", f"{agg['metric']}_stderr,{key}"
            have = [t for t in leaves if metric_key in results[t]]
            values = [results[t][metric_key] for t in have]
            sizes = [
                results[t].get(f"{agg['metric']}_count,{key}", results[t]["sample_len"])
                for t in have
            ]
            stderrs = [results[t].get(stderr_key) for t in have]
            weight = agg.get("weight_by_size", True)
            entry[metric_key] = aggregate_subtask_metrics(values, sizes, weight)
            counts[metric_key] = sum(sizes)
            if "N/A" in stderrs or None in stderrs:
                entry[stderr_key] = "N/A"
            elif weight:
                entry[stderr_key] = pooled_sample_stderr(stderrs, sizes)
            else:
                entry[stderr_key] = unweighted_mean_stderr(stderrs)
    entry["sample_count"] = counts
    return entry


def rescore_run(run: RunLogs, pack: TaskPack) -> tuple[dict[str, Any], dict[str, TaskScores]]:
    """Re-scored ``results``/``groups`` of a run and the per-task scores behind them.

    Raises ValueError naming the task when a logged task is not in the pack.
    """
    bootstrap = int(run.results.get("config", {}).get("bootstrap_iters", 100000) or 0)
    results: dict[str, dict[str, Any]] = {}
    scored: dict[str, TaskScores] = {}
    for task in sorted(run.samples_paths):
        spec = pack.tasks.get(task)
        if spec is None:
            raise ValueError(
                f"task {task}: logged in {run.samples_paths[task]} but not in the task pack "
                "(pass --include_path with the folder the run used)"
            )
        scored[task] = score_task(spec, list(run.samples(task)))
        results[task] = aggregate_task(scored[task], bootstrap)
    return {"results": results}, scored


def group_results(
    pack: TaskPack, results: dict[str, dict[str, Any]], extra_metrics: list[str]
) -> dict[str, dict[str, Any]]:
    """Entries of every pack group with an aggregation whose leaves were scored."""
    groups = {}
    for group in sorted(pack.groups):
        entry = aggregate_group(group, pack, results, extra_metrics)
        if entry is not None:
            groups[group] = entry
    return groups
