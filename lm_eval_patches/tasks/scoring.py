"""Per-doc scoring of MERA tasks and the aggregations registered with lm-eval.

Metric names: ``exact_match`` is the original harness EM (for parity: case and ASCII
punctuation handled as each task's YAML says, no stripping); ``exact_match_norm`` is our
normalised EM: the answer ``lm_eval_patches.answers`` reads in the reply (reasoning blocks
removed; an option letter that stands as the answer, among the doc's own ``option_*`` labels;
numbers as numbers; normalised text) against the gold; ``group_exact_match`` counts a ruHHH
group right only when all its items are; ``intent_em``/``slot_f1`` score ruSLUn. Docs without
a gold (private test splits) and failed requests (see ``lm_eval_patches.failures``) score None
and are left out; a metric with no scored doc has no value (``None``: JSON ``null``, an empty
table cell), never a fake 0.

Every MERA task also reports two counts (aggregation ``mera_count``, a sum): ``n_scored``, the
samples that got a score, and ``n_failed``, the samples whose request failed. Its *score* (what
the MERA groups average, see ``lm_eval_patches.groups``) is the mean of its ``score_metrics``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lm_eval.api.registry import register_aggregation, register_metric

from lm_eval_patches import answers, metrics
from lm_eval_patches.failures import is_failure

log = logging.getLogger(__name__)


@dataclass
class ScoringOptions:
    """The ``mera.scoring`` block of a task YAML."""

    kind: str = "em"  # "em" or "slun"
    ignore_case: bool = True
    ignore_punctuation: bool = True
    group_by: str | None = None  # a dotted doc path, e.g. "meta.group_id"
    # [opening, closing] marker pairs removed from replies before exact_match_norm and the
    # ruSLUn metrics read them; [] keeps reasoning. The parity exact_match never strips.
    reasoning_delimiters: tuple[tuple[str, str], ...] = answers.DEFAULT_REASONING_DELIMITERS
    # The metrics whose mean is the task's score in MERA groups (default: by kind, see below).
    score: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ScoringOptions:
        """Options from a YAML ``scoring:`` mapping; ValueError for malformed delimiters."""
        raw = dict(raw or {})
        known = {
            k: raw.pop(k)
            for k in ("kind", "ignore_case", "ignore_punctuation", "group_by", "score")
            if k in raw
        }
        if "reasoning_delimiters" in raw:
            pairs = raw.pop("reasoning_delimiters") or ()
            answers.strip_reasoning("", pairs)  # validates the pairs
            known["reasoning_delimiters"] = tuple((str(o), str(c)) for o, c in pairs)
        if isinstance(known.get("score"), str):
            known["score"] = [known["score"]]
        return cls(**known, extra=raw)

    @property
    def score_metrics(self) -> list[str]:
        """Metrics averaged into the task's score: ``exact_match_norm`` for EM tasks (the
        answer a person would read), the mean of ``intent_em`` and ``slot_f1`` for ruSLUn."""
        if self.score:
            return list(self.score)
        return ["intent_em", "slot_f1"] if self.kind == "slun" else ["exact_match_norm"]


COUNT_METRICS = ("n_scored", "n_failed")


def lookup(doc: dict, dotted: str) -> Any:
    """``doc["meta"]["group_id"]`` for ``"meta.group_id"`` (None when absent)."""
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def score_doc(options: ScoringOptions, doc: dict, prediction: str) -> dict[str, Any]:
    """Per-doc metric values (None where the gold is missing).

    The option labels of a choice doc are its non-empty ``inputs.option_*`` fields (what its
    prompt lists as A, B, …); a doc without them is read with A–J when its golds are letters.
    """
    gold = doc.get("outputs")
    if options.kind == "slun":
        if metrics.gold_is_missing(gold):
            return {"intent_em": None, "slot_f1": None}
        reply = answers.strip_reasoning(prediction, options.reasoning_delimiters)
        return metrics.slun_scores(reply, str(gold))
    golds = metrics.parse_golds(gold)
    if metrics.gold_is_missing(golds):
        scores: dict[str, Any] = {"exact_match": None, "exact_match_norm": None}
    else:
        scores = {
            "exact_match": metrics.em_parity(
                prediction, golds, options.ignore_case, options.ignore_punctuation
            ),
            "exact_match_norm": metrics.em_normalized(
                prediction,
                golds,
                labels=answers.option_labels(doc.get("inputs")) or None,
                reasoning_delimiters=options.reasoning_delimiters,
            ),
        }
    if options.group_by:
        scores["group_exact_match"] = (lookup(doc, options.group_by), scores["exact_match_norm"])
    return scores


def failed_scores(options: ScoringOptions, doc: dict) -> dict[str, Any]:
    """Per-doc metric values of a failed request: the keys of :func:`score_doc`, all None
    (a grouped metric keeps its group key: ``(group_id, None)``)."""
    shape = score_doc(options, doc, "")
    return {
        name: (value[0], None) if isinstance(value, tuple) else None
        for name, value in shape.items()
    }


def is_scored(options: ScoringOptions, scores: dict[str, Any]) -> bool:
    """True when every score metric of the doc has a value (gold present, request answered)."""
    return all(scores.get(name) is not None for name in options.score_metrics)


def _value_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def process_results(
    options: ScoringOptions, metric_names: Iterable[str], doc: dict, results: list
) -> dict[str, Any]:
    """What ``MeraTask.process_results`` returns for one doc: the per-doc values of the
    task's metrics (``metric_names``, from its ``metric_list``) given its filtered results,
    plus ``n_scored``/``n_failed``. A failed request (``failures.is_failure``) scores None on
    every metric (left out of the means) and counts as failed.

    Shared with ``mera-mm score``, which re-scores saved samples logs with this same path.
    """
    names = set(metric_names)
    if "bypass" in names:
        return {"bypass": None}
    prediction = results[0] if results else ""
    if isinstance(prediction, list):  # filters without take_first keep a list
        prediction = prediction[0] if prediction else ""
    failed = is_failure(prediction)
    if failed:
        scores = failed_scores(options, doc)
    else:
        scores = score_doc(options, doc, str(prediction))
    scored = not failed and is_scored(options, scores)
    scores.update(n_scored=int(scored), n_failed=int(failed))
    return {name: value for name, value in scores.items() if name in names}


@register_aggregation("mera_mean")
def mera_mean(items: list[float | None]) -> float | None:
    """Mean over docs that have a score (None when none has: no gold, or every request failed)."""
    return _value_or_none(metrics.mean_of_scored(list(items)))


@register_aggregation("mera_group_mean")
def mera_group_mean(items: list[tuple[Any, int | None]]) -> float | None:
    """Share of groups whose scored items are all right (ruHHH group EM); None when no group
    has a scored item."""
    return _value_or_none(metrics.group_all_correct(list(items)))


@register_aggregation("mera_count")
def mera_count(items: list[int]) -> int:
    """How many docs counted (a sum of 0/1 per doc): ``n_scored`` and ``n_failed``."""
    return int(sum(items))


def _passthrough(items: Any) -> Any:
    return items


for _name in ("exact_match_norm", "intent_em", "slot_f1"):
    register_metric(
        metric=_name, higher_is_better=True, output_type="generate_until", aggregation="mera_mean"
    )(_passthrough)
for _name in COUNT_METRICS:
    register_metric(
        metric=_name,
        higher_is_better=_name == "n_scored",
        output_type="generate_until",
        aggregation="mera_count",
    )(_passthrough)
register_metric(
    metric="group_exact_match",
    higher_is_better=True,
    output_type="generate_until",
    aggregation="mera_group_mean",
)(_passthrough)
