"""Per-request failures: recorded with the reason, counted, excluded from scores; the run goes on.

A request that could not be built, decoded, sent or answered is answered with a *failure
answer*: the reserved marker :data:`FAILURE_MARKER` followed by the reason. It shows as the
response in the samples log, :class:`~lm_eval_patches.tasks.task.MeraTask` recognises it
(:func:`is_failure`), leaves the sample out of every metric of its task and counts it under
``n_failed``; after a CLI run the process exits with :data:`FAILED_EXIT_STATUS`.

Contract for backends: answer a failed request with the return value of
``FAILURES.record(task, doc, reason)``; answer a request that already failed while it was being
built (:func:`failed_at_build`) with :func:`build_failure_answer` (or :data:`FAILED_ANSWER`)
without sending it or recording it twice. Never answer ``""`` for a failure.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Starts every failure answer. Brackets and the project name make a real reply that begins
# with it practically impossible, and a person reading the samples log sees what happened.
FAILURE_MARKER = "[mera: request failed]"

# The bare failure answer (no reason): still recognised as a failure by scoring.
FAILED_ANSWER = FAILURE_MARKER

# Exit status of an lm-eval run in which some request failed (everything is written first).
FAILED_EXIT_STATUS = 3

# Key of a request's media dict when the task could not build its media (the task reported it).
BUILD_ERROR_KEY = "mera_error"


def failure_answer(reason: str) -> str:
    """The answer that stands for a failed request: the marker, then the reason on one line."""
    return f"{FAILURE_MARKER} {' '.join(str(reason).split())}".rstrip()


def is_failure(answer: object) -> bool:
    """True when ``answer`` is a failure answer (see :func:`failure_answer`), not a reply."""
    return isinstance(answer, str) and answer.startswith(FAILURE_MARKER)


def failure_reason(answer: str) -> str:
    """The reason carried by a failure answer ("" for the bare marker)."""
    return answer[len(FAILURE_MARKER) :].strip() if is_failure(answer) else ""


def failed_at_build(arguments: tuple) -> bool:
    """True when the task marked this request as broken while building it (already reported),
    so a backend answers :func:`build_failure_answer` without sending it or reporting it twice."""
    media = arguments[2] if len(arguments) > 2 else None
    return isinstance(media, dict) and BUILD_ERROR_KEY in media


def build_failure_answer(arguments: tuple) -> str:
    """The failure answer of a request that failed while being built, with the task's reason."""
    media = arguments[2] if len(arguments) > 2 else None
    reason = media.get(BUILD_ERROR_KEY, "") if isinstance(media, dict) else ""
    return failure_answer(reason) if reason else FAILED_ANSWER


@dataclass(frozen=True)
class Failure:
    """One failed request: task name, doc label (``meta.id``) and the reason."""

    task: str
    doc: str
    reason: str


class FailureLog:
    """Failures of the current process, in order."""

    def __init__(self) -> None:
        self.items: list[Failure] = []

    def record(self, task: str, doc: str, reason: str) -> str:
        """Log one failure and return the answer to use for it (a failure answer)."""
        first_of_task = all(f.task != task for f in self.items)
        self.items.append(Failure(task, doc, reason))
        # The first failure of a task is worth a line as it happens; the rest are counted in
        # the summary (a backend that cannot pass audio would otherwise print one per doc).
        level = logging.WARNING if first_of_task else logging.DEBUG
        log.log(level, "request failed (task %s, doc %s): %s", task, doc, reason)
        return failure_answer(reason)

    def since(self, start: int) -> list[Failure]:
        """Failures recorded after the first ``start`` (a run notes ``len(items)`` first)."""
        return self.items[start:]

    def summary(self, items: list[Failure] | None = None) -> str:
        """One line per task: how many requests failed, with the commonest reason."""
        items = self.items if items is None else items
        if not items:
            return "no failed requests"
        by_task = Counter(f.task for f in items)
        lines = [f"{len(items)} request(s) failed:"]
        for task, count in by_task.most_common():
            reasons = Counter(f.reason for f in items if f.task == task)
            reason, _ = reasons.most_common(1)[0]
            lines.append(f"  {task}: {count} (e.g. {reason})")
        return "\n".join(lines)

    def summary_line(self, items: list[Failure] | None = None) -> str:
        """The run's last line when requests failed: counts per task, and what it means."""
        items = self.items if items is None else items
        by_task = Counter(f.task for f in items)
        tasks = ", ".join(f"{task} {count}" for task, count in by_task.most_common())
        return (
            f"mera: {len(items)} request(s) failed ({tasks}); they are excluded from the "
            f"scores and counted as n_failed; exit status {FAILED_EXIT_STATUS}"
        )


FAILURES = FailureLog()
