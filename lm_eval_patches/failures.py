"""Per-request failures: recorded with the reason, counted, summarised; the run goes on."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

log = logging.getLogger(__name__)

# What a failed request answers: empty, so it scores 0 and is visible in the samples.
FAILED_ANSWER = ""


# Key of a request's media dict when the task could not build its media (the task reported it).
BUILD_ERROR_KEY = "mera_error"


def failed_at_build(arguments: tuple) -> bool:
    """True when the task marked this request as broken while building it (already reported),
    so a backend answers FAILED_ANSWER without sending it or reporting it twice."""
    media = arguments[2] if len(arguments) > 2 else None
    return isinstance(media, dict) and BUILD_ERROR_KEY in media


@dataclass(frozen=True)
class Failure:
    task: str
    doc: str
    reason: str


class FailureLog:
    """Failures of the current process, in order."""

    def __init__(self) -> None:
        self.items: list[Failure] = []

    def record(self, task: str, doc: str, reason: str) -> str:
        """Log one failure and return the answer to use for it."""
        self.items.append(Failure(task, doc, reason))
        log.error("request failed (task %s, doc %s): %s", task, doc, reason)
        return FAILED_ANSWER

    def summary(self) -> str:
        """One line per task: how many requests failed, with the commonest reason."""
        if not self.items:
            return "no failed requests"
        by_task = Counter(f.task for f in self.items)
        lines = [f"{len(self.items)} request(s) failed:"]
        for task, count in by_task.most_common():
            reasons = Counter(f.reason for f in self.items if f.task == task)
            reason, _ = reasons.most_common(1)[0]
            lines.append(f"  {task}: {count} (e.g. {reason})")
        return "\n".join(lines)


FAILURES = FailureLog()
