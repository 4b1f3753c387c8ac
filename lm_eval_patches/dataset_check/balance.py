"""Answer-letter balance: a model that always says "A" must not beat chance.

MERA asks that option counts may vary per item but the answer letters be balanced overall. With
varying option counts, a letter's expected share is the sum over items of 1/(options of that item)
for the items that offer it; observed counts are tested against that with a chi-square test
(``scipy.stats.chisquare``). Small sets give weak evidence, so the test only fails with enough
items.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lm_eval_patches.dataset_check.layout import Item
from lm_eval_patches.dataset_check.report import ERROR, WARNING, Report

MIN_ITEMS = 20  # fewer letter items: no verdict, only the counts in the stats
P_ERROR = 0.001
P_WARNING = 0.01


@dataclass
class LetterBalance:
    """Collects gold letters and option counts of letter-answer test items."""

    golds: Counter = field(default_factory=Counter)
    option_counts: Counter = field(default_factory=Counter)
    expected: Counter = field(default_factory=Counter)

    def add(self, item: Item, letters: list[str], report: Report) -> None:
        """Count one item (its option letters upper case); a gold outside them is an error."""
        if not letters:
            return
        gold = item.record.get("outputs")
        self.option_counts[len(letters)] += 1
        if item.split != "test" or not isinstance(gold, str) or not gold.strip():
            return
        gold = gold.strip().upper()
        if len(gold) != 1:
            return  # not a letter answer (free-form answers with options for context)
        if gold not in letters:
            cyrillic = " (a Cyrillic letter: option labels are Latin)" if _cyrillic(gold) else ""
            report.add(
                "options",
                ERROR,
                f"gold {gold!r} is not one of the item's options ({', '.join(letters)}){cyrillic}",
                **item.where("outputs"),
            )
            return
        self.golds[gold] += 1
        for letter in letters:
            self.expected[letter] += 1 / len(letters)

    def finish(self, report: Report) -> None:
        """Add the chi-square verdict and the counts to ``report``."""
        if self.option_counts:
            report.stats["option_counts"] = dict(sorted(self.option_counts.items()))
        total = sum(self.golds.values())
        if not total:
            return
        letters = sorted(self.expected)
        report.stats["gold_letters"] = {c: self.golds.get(c, 0) for c in letters}
        if total < MIN_ITEMS or len(letters) < 2:
            return
        from scipy.stats import chisquare

        observed = [self.golds.get(c, 0) for c in letters]
        scale = total / sum(self.expected.values())
        expected = [self.expected[c] * scale for c in letters]
        p_value = float(chisquare(observed, expected).pvalue)
        report.stats["gold_letters_p_value"] = round(p_value, 6)
        if p_value < P_WARNING:
            shares = ", ".join(
                f"{c}: {o} (expected {e:.1f})"
                for c, o, e in zip(letters, observed, expected, strict=True)
            )
            report.add(
                "balance",
                ERROR if p_value < P_ERROR else WARNING,
                f"answer letters are unbalanced over {total} test items ({shares}; "
                f"chi-square p={p_value:.2g}); shuffle the options",
                split="test",
                field="outputs",
            )


def _cyrillic(text: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in text)
