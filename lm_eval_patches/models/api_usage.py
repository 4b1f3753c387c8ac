"""Token usage and latency of API requests: per sample in the samples log, totals per task.

Backends :func:`record` one entry per answered or failed request. lm-eval's samples log has no
slot for per-request facts, so :func:`install_samples_hook` wraps
``EvaluationTracker.save_results_samples`` to add them to each logged sample as ``mera_api``
(keyed by task and doc id). Totals per task go into the results' ``config`` through the
backend's ``get_model_info``.
"""

from __future__ import annotations

from typing import Any

_ENTRIES: dict[tuple[str, int], dict[str, Any]] = {}


def record(task: str, doc_id: int, entry: dict[str, Any]) -> None:
    """Remember one request's facts: ``prompt_tokens``, ``completion_tokens``, ``latency_s``,
    ``attempts``, ``failed`` (the reason or None)."""
    _ENTRIES[(task, int(doc_id))] = entry


def reset() -> None:
    """Forget what was recorded (a new backend instance starts a new run)."""
    _ENTRIES.clear()


def entry(task: str, doc_id: int) -> dict[str, Any] | None:
    """What was recorded for (task, doc id), if anything."""
    return _ENTRIES.get((task, int(doc_id)))


def totals() -> dict[str, dict[str, Any]]:
    """Per task: requests, failed, prompt/completion tokens (when reported), latency."""
    out: dict[str, dict[str, Any]] = {}
    for (task, _), item in _ENTRIES.items():
        t = out.setdefault(
            task,
            {
                "requests": 0,
                "failed": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "usage_reported": 0,
                "latency_s_total": 0.0,
            },
        )
        t["requests"] += 1
        t["failed"] += bool(item.get("failed"))
        if item.get("prompt_tokens") is not None:
            t["usage_reported"] += 1
            t["prompt_tokens"] += int(item["prompt_tokens"])
            t["completion_tokens"] += int(item.get("completion_tokens") or 0)
        t["latency_s_total"] += float(item.get("latency_s") or 0.0)
    for t in out.values():
        answered = t["requests"] - t["failed"]
        t["latency_s_mean"] = round(t["latency_s_total"] / answered, 4) if answered else None
        t["latency_s_total"] = round(t["latency_s_total"], 4)
    return out


def install_samples_hook() -> None:
    """Make lm-eval's samples log carry ``mera_api`` per sample (idempotent)."""
    from lm_eval.loggers.evaluation_tracker import EvaluationTracker

    original = EvaluationTracker.save_results_samples
    if getattr(original, "_mera_api", False):
        return

    def save_results_samples(self: Any, task_name: str, samples: list) -> None:
        for sample in samples:
            found = entry(task_name, sample.get("doc_id", -1))
            if found is not None:
                sample["mera_api"] = found
        return original(self, task_name, samples)

    save_results_samples._mera_api = True  # type: ignore[attr-defined]
    EvaluationTracker.save_results_samples = save_results_samples
