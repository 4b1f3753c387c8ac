"""Judge score (``judge_score``) and group judge score (``group_judge_score``) of re-scored tasks.

An item is sent to the judge only when the task's own scoring path scored it (it has a gold and
was not a failed request), so private splits and failed samples are never judged. Items whose
verdict is missing (the judge errored or answered no 0/1) are counted and left out; a ruHHH group
with such an item is left out of the group score, since whether all its items are right is then
unknown. ruSLUn (intent EM and slot F1) has no judge score, as in MERA.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lm_eval_patches import metrics
from lm_eval_patches.judge import JudgeClient, JudgeItem, VerdictCache, judge_items
from lm_eval_patches.rescore import TaskScores
from lm_eval_patches.tasks.prompt import fill_instruction
from lm_eval_patches.tasks.scoring import lookup

JS = "judge_score"
GROUP_JS = "group_judge_score"


def doc_question(doc: dict[str, Any]) -> str:
    """The doc's filled instruction (question and options; media left as placeholders)."""
    inputs = doc.get("inputs") or {}
    media = {k: v["kind"] for k, v in inputs.items() if isinstance(v, dict) and "kind" in v}
    return fill_instruction(str(doc.get("instruction", "")), inputs, media)


@dataclass
class JudgeCounts:
    """What happened to one task's items (recorded in the results)."""

    judged: int = 0
    cached: int = 0
    failed: int = 0
    not_scored: int = 0  # no gold or a failed request: not sent to the judge
    groups_excluded: int = 0
    reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "judged": self.judged,
            "from_cache": self.cached,
            "failed": self.failed,
            "not_scored": self.not_scored,
            "groups_excluded": self.groups_excluded,
            "failure_reasons": dict(self.reasons.most_common(5)),
        }


def _scored_by_task(record: dict[str, Any]) -> bool:
    """True when the task's own metrics scored this doc (so it has a gold, and no failure)."""
    return any(v is not None for k, v in record["scores"].items() if not k.startswith("group_"))


def judge_task(
    scores: TaskScores,
    client: JudgeClient,
    cache: VerdictCache,
    concurrency: int,
) -> tuple[dict[str, Any], JudgeCounts, list[int | str | None]]:
    """Judge metrics of one task ({"judge_score,<filter>": value, ...}), its counts, and for
    every record in ``scores.docs`` its verdict: 1, 0, "failed", or None when not judged."""
    counts = JudgeCounts()
    verdicts: list[int | str | None] = [None] * len(scores.docs)
    if scores.spec.options.kind != "em":
        return {}, counts, verdicts
    picked, items = [], []
    for i, record in enumerate(scores.docs):
        if not _scored_by_task(record):
            counts.not_scored += 1
            continue
        golds = tuple(g for g in metrics.parse_golds(record["doc"].get("outputs")) if g.strip())
        picked.append(i)
        items.append(JudgeItem(doc_question(record["doc"]), golds, str(record["response"])))
    for i, verdict in zip(picked, judge_items(client, items, cache, concurrency), strict=True):
        verdicts[i] = "failed" if verdict.value is None else verdict.value
        if verdict.value is None:
            counts.failed += 1
            counts.reasons[(verdict.error or "no verdict").split(":")[0]] += 1
        else:
            counts.judged += 1
            counts.cached += int(verdict.cached)
    out: dict[str, Any] = {}
    by_filter: dict[str, list[int | None]] = {}
    groups: dict[str, list[tuple[Any, int | None]]] = {}
    for i in picked:
        record = scores.docs[i]
        value = verdicts[i] if isinstance(verdicts[i], int) else None
        by_filter.setdefault(record["filter"], []).append(value)
        if scores.spec.options.group_by:
            group_id = lookup(record["doc"], scores.spec.options.group_by)
            groups.setdefault(record["filter"], []).append((group_id, value))
    for key, values in by_filter.items():
        judged = [v for v in values if v is not None]
        out[f"{JS},{key}"] = metrics.mean_of_scored(judged)
        out[f"{JS}_stderr,{key}"] = "N/A"
        out[f"{JS}_count,{key}"] = len(judged)
    for key, pairs in groups.items():
        unknown = {g for g, v in pairs if v is None}
        counts.groups_excluded += len(unknown)
        kept = [(g, v) for g, v in pairs if g not in unknown]
        out[f"{GROUP_JS},{key}"] = metrics.group_all_correct(kept)
        out[f"{GROUP_JS}_stderr,{key}"] = "N/A"
    return out, counts, verdicts
