"""Putting our cache and run record into stock lm-eval, without editing it.

Run by the start-up hook once ``lm_eval.evaluator`` is imported:

- ``lm_eval.api.model.CachingLM`` (what ``simple_evaluate`` wraps the model in for
  ``--use_cache``) becomes :class:`~lm_eval_patches.cache.caching_lm.MeraCachingLM`;
- ``simple_evaluate`` is wrapped to note the run's backend, model arguments and settings
  (:data:`CURRENT_RUN`), which the cache keys on and the run record reports;
- ``EvaluationTracker.save_results_aggregated`` is wrapped to write ``run_status.json`` beside
  the results file (:mod:`lm_eval_patches.run_record`).
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

_RANK_SUFFIX = re.compile(r"_rank\d+\.db$")

# Arguments of simple_evaluate that the run record reports.
RECORDED_SETTINGS = (
    "tasks",
    "num_fewshot",
    "batch_size",
    "device",
    "use_cache",
    "limit",
    "gen_kwargs",
    "apply_chat_template",
    "fewshot_as_multiturn",
    "system_instruction",
    "random_seed",
    "numpy_random_seed",
    "torch_random_seed",
    "fewshot_random_seed",
    "predict_only",
)


@dataclass
class RunContext:
    """What the current ``simple_evaluate`` call was asked to do."""

    backend: Any
    model_args: Any
    settings: dict[str, Any]
    caches: list = field(default_factory=list)
    datasets: dict[str, Any] = field(default_factory=dict)  # per task: source, fingerprints
    failures_start: int = 0  # FAILURES.items recorded before this run


# The simple_evaluate call in progress (None outside one).
CURRENT_RUN: RunContext | None = None
# The last finished one (the run record is written after simple_evaluate returns).
LAST_RUN: RunContext | None = None


def strip_rank_suffix(cache_db: str) -> str:
    """``PATH`` from the ``PATH_rank<N>.db`` that lm-eval's evaluator builds."""
    return _RANK_SUFFIX.sub("", str(cache_db))


def install(evaluator: ModuleType) -> None:
    """Patch lm-eval (idempotent); ``evaluator`` is the freshly imported ``lm_eval.evaluator``."""
    import lm_eval.api.model as model_module

    from lm_eval_patches.cache.caching_lm import MeraCachingLM

    if getattr(evaluator, "_mera_cache_installed", False):
        return
    model_module.CachingLM = MeraCachingLM
    evaluator.simple_evaluate = _recording(evaluator.simple_evaluate)
    evaluator.evaluate = _noting_datasets(evaluator.evaluate)
    _patch_tracker()
    evaluator._mera_cache_installed = True


def _recording(simple_evaluate: Any) -> Any:
    signature = inspect.signature(simple_evaluate)

    @functools.wraps(simple_evaluate)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global CURRENT_RUN, LAST_RUN
        from lm_eval_patches.failures import FAILURES

        bound = signature.bind_partial(*args, **kwargs)
        given = bound.arguments
        run = RunContext(
            backend=given.get("model", "hf"),
            model_args=given.get("model_args"),
            settings={name: given[name] for name in RECORDED_SETTINGS if name in given},
            failures_start=len(FAILURES.items),
        )
        outer, CURRENT_RUN = CURRENT_RUN, run
        try:
            return simple_evaluate(*args, **kwargs)
        finally:
            CURRENT_RUN, LAST_RUN = outer, run

    wrapper._mera_recording = True
    return wrapper


def _noting_datasets(evaluate: Any) -> Any:
    """Note each task's dataset source while the task objects are alive (simple_evaluate
    looks ``evaluate`` up in the module at call time)."""

    @functools.wraps(evaluate)
    def wrapper(lm: Any, task_dict: Any, *args: Any, **kwargs: Any) -> Any:
        if CURRENT_RUN is not None:
            from lm_eval_patches.run_record import dataset_sources

            try:
                CURRENT_RUN.datasets = dataset_sources(task_dict)
            except Exception as exc:  # noqa: BLE001 - the record must never stop a run
                CURRENT_RUN.datasets = {"error": str(exc)}
        return evaluate(lm, task_dict, *args, **kwargs)

    return wrapper


def _patch_tracker() -> None:
    from lm_eval.loggers.evaluation_tracker import EvaluationTracker

    original = EvaluationTracker.save_results_aggregated
    if getattr(original, "_mera_run_record", False):
        return

    @functools.wraps(original)
    def save_results_aggregated(self: Any, results: dict, samples: dict | None = None) -> None:
        original(self, results=results, samples=samples)
        if getattr(self, "output_path", None):
            from lm_eval_patches.run_record import write_run_status

            write_run_status(self, results, samples, LAST_RUN or CURRENT_RUN)

    save_results_aggregated._mera_run_record = True
    EvaluationTracker.save_results_aggregated = save_results_aggregated
