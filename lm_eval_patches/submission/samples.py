"""Answers from an lm-eval samples log: one per doc, keyed by the doc's MERA id.

The answer is the logged ``filtered_resps`` (the task's filter output: what the MERA site gets,
MERA_SPEC 11.3), its first element, and that element's first when a filter kept a list. The id
is the doc's ``meta.id`` (what ``MeraTask.doc_label`` names docs by; ruTiE keeps it too), never
rebuilt by arithmetic. A sample whose request failed (see ``lm_eval_patches.failures``) or whose
answer is empty is not an answer: it is reported as unanswered, with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_patches.failures import failure_reason, is_failure


class SamplesError(ValueError):
    """A samples log that cannot be packed; names the file, the line and the field."""


@dataclass
class TaskAnswers:
    """What one samples log gives: answers by id, in log order, and unanswered ids."""

    task: str
    path: Path
    answers: list[tuple[int, str]] = field(default_factory=list)  # (id, answer), log order
    unanswered: list[tuple[int, str]] = field(default_factory=list)  # (id, reason)
    filter_name: str | None = None
    other_filters: set[str] = field(default_factory=set)


def response_text(filtered: Any) -> Any:
    """``filtered_resps`` -> its first element, and that one's first if a filter kept a list."""
    value = filtered
    for _ in range(2):
        if isinstance(value, list | tuple):
            value = value[0] if value else None
    return value


def doc_meta_id(sample: dict) -> Any:
    """The MERA id of a logged sample's doc (``doc.meta.id``), or None."""
    doc = sample.get("doc")
    meta = doc.get("meta") if isinstance(doc, dict) else None
    return meta.get("id") if isinstance(meta, dict) else None


def read_answers(task: str, path: Path) -> TaskAnswers:
    """Read one samples log. Raises SamplesError for a line that is not JSON or a doc with no
    integer ``meta.id`` (the site keys answers by it; guessing one would misplace answers)."""
    found = TaskAnswers(task, path)
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"task {task}, {path.name} line {number}"
            try:
                sample = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SamplesError(f"{where}: not JSON ({exc})") from exc
            # Tasks with several filters log one line per doc and filter: keep the first.
            name = sample.get("filter")
            if found.filter_name is None:
                found.filter_name = name
            if name != found.filter_name:
                found.other_filters.add(str(name))
                continue
            doc_id = doc_meta_id(sample)
            if isinstance(doc_id, bool) or not isinstance(doc_id, int):
                raise SamplesError(
                    f"{where} (doc_id {sample.get('doc_id')}): field doc.meta.id is "
                    f"{doc_id!r}, not an integer id; the samples log must carry each doc's "
                    "MERA id"
                )
            text = response_text(sample.get("filtered_resps"))
            if text is not None and not isinstance(text, str):
                text = json.dumps(text, ensure_ascii=False)
            if text is None:
                found.unanswered.append((doc_id, "no response logged"))
            elif is_failure(text):
                found.unanswered.append((doc_id, f"the request failed: {failure_reason(text)}"))
            elif not text.strip():
                found.unanswered.append(
                    (doc_id, "empty answer (the request failed or the model said nothing)")
                )
            else:
                found.answers.append((doc_id, text))
    return found
