"""Per-doc scoring of MERA tasks and the aggregations registered with lm-eval.

Metric names: ``exact_match`` is the original harness EM (for parity: case and ASCII
punctuation handled as each task's YAML says, no stripping); ``exact_match_norm`` is our
normalised EM (Unicode punctuation, whitespace, case, a single answer letter pulled out of
"Ответ: B"); ``group_exact_match`` counts a ruHHH group right only when all its items are;
``intent_em``/``slot_f1`` score ruSLUn. Docs without a gold (private test splits) score None and
are left out; a metric with no scored doc is NaN with a warning, never a fake 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lm_eval.api.registry import register_aggregation, register_metric

from lm_eval_patches import metrics

log = logging.getLogger(__name__)


@dataclass
class ScoringOptions:
    """The ``mera.scoring`` block of a task YAML."""

    kind: str = "em"  # "em" or "slun"
    ignore_case: bool = True
    ignore_punctuation: bool = True
    group_by: str | None = None  # a dotted doc path, e.g. "meta.group_id"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ScoringOptions:
        raw = dict(raw or {})
        known = {
            k: raw.pop(k)
            for k in ("kind", "ignore_case", "ignore_punctuation", "group_by")
            if k in raw
        }
        return cls(**known, extra=raw)


def lookup(doc: dict, dotted: str) -> Any:
    """``doc["meta"]["group_id"]`` for ``"meta.group_id"`` (None when absent)."""
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def score_doc(options: ScoringOptions, doc: dict, prediction: str) -> dict[str, Any]:
    """Per-doc metric values (None where the gold is missing)."""
    gold = doc.get("outputs")
    if options.kind == "slun":
        if metrics.gold_is_missing(gold):
            return {"intent_em": None, "slot_f1": None}
        return metrics.slun_scores(prediction, str(gold))
    golds = metrics.parse_golds(gold)
    if metrics.gold_is_missing(golds):
        scores: dict[str, Any] = {"exact_match": None, "exact_match_norm": None}
    else:
        scores = {
            "exact_match": metrics.em_parity(
                prediction, golds, options.ignore_case, options.ignore_punctuation
            ),
            "exact_match_norm": metrics.em_normalized(prediction, golds),
        }
    if options.group_by:
        scores["group_exact_match"] = (lookup(doc, options.group_by), scores["exact_match_norm"])
    return scores


def process_results(
    options: ScoringOptions, metric_names: Iterable[str], doc: dict, results: list
) -> dict[str, Any]:
    """What ``MeraTask.process_results`` returns for one doc: the per-doc values of the
    task's metrics (``metric_names``, from its ``metric_list``) given its filtered results.

    Shared with ``mera-mm score``, which re-scores saved samples logs with this same path.
    """
    names = set(metric_names)
    if "bypass" in names:
        return {"bypass": None}
    prediction = results[0] if results else ""
    if isinstance(prediction, list):  # filters without take_first keep a list
        prediction = prediction[0] if prediction else ""
    scores = score_doc(options, doc, str(prediction))
    return {name: value for name, value in scores.items() if name in names}


def _warn_if_unscored(name: str, value: float, total: int) -> float:
    if math.isnan(value) and total:
        log.warning(
            "%s: none of %d docs has a gold answer (a private test split?). The metric is "
            "reported as NaN; run with --predict_only and submit to the MERA site instead.",
            name,
            total,
        )
    return value


@register_aggregation("mera_mean")
def mera_mean(items: list[float | None]) -> float:
    """Mean over docs that have a gold answer (NaN when none has)."""
    return _warn_if_unscored("metric", metrics.mean_of_scored(list(items)), len(items))


@register_aggregation("mera_group_mean")
def mera_group_mean(items: list[tuple[Any, int | None]]) -> float:
    """Share of groups whose items are all right (ruHHH group EM)."""
    return _warn_if_unscored(
        "group_exact_match", metrics.group_all_correct(list(items)), len(items)
    )


def _passthrough(items: Any) -> Any:
    return items


for _name in ("exact_match_norm", "intent_em", "slot_f1"):
    register_metric(
        metric=_name, higher_is_better=True, output_type="generate_until", aggregation="mera_mean"
    )(_passthrough)
register_metric(
    metric="group_exact_match",
    higher_is_better=True,
    output_type="generate_until",
    aggregation="mera_group_mean",
)(_passthrough)
