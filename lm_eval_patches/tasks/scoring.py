"""Per-doc scoring of MERA tasks and the aggregations registered with lm-eval.

Metric names: ``exact_match`` is the original harness EM (for parity: case and ASCII
punctuation handled as each task's YAML says, no stripping); ``exact_match_norm`` is our
normalised EM: the answer ``lm_eval_patches.answers`` reads in the reply (reasoning blocks
removed; an option letter that stands as the answer, among the doc's own ``option_*`` labels;
numbers as numbers; normalised text) against the gold; ``group_exact_match`` counts a ruHHH
group right only when all its items are; ``intent_em``/``slot_f1`` score ruSLUn. Docs without
a gold (private test splits) score None and are left out; a metric with no scored
doc is NaN with a warning, never a fake 0.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from lm_eval.api.registry import register_aggregation, register_metric

from lm_eval_patches import answers, metrics

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
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ScoringOptions:
        """Options from a YAML ``scoring:`` mapping; ValueError for malformed delimiters."""
        raw = dict(raw or {})
        known = {
            k: raw.pop(k)
            for k in ("kind", "ignore_case", "ignore_punctuation", "group_by")
            if k in raw
        }
        if "reasoning_delimiters" in raw:
            pairs = raw.pop("reasoning_delimiters") or ()
            answers.strip_reasoning("", pairs)  # validates the pairs
            known["reasoning_delimiters"] = tuple((str(o), str(c)) for o, c in pairs)
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
