"""Run every dataset check over one folder and return the report."""

from __future__ import annotations

from pathlib import Path

from lm_eval_patches.dataset_check.balance import LetterBalance
from lm_eval_patches.dataset_check.layout import iter_items, open_dataset
from lm_eval_patches.dataset_check.media import MediaChecker, MediaRules
from lm_eval_patches.dataset_check.records import (
    SplitTracker,
    check_fields,
    check_options,
    check_placeholders,
    check_prompt_ending,
    resolve_instruction,
)
from lm_eval_patches.dataset_check.report import ERROR, Report


def check_dataset(
    root: str | Path,
    access: str | None = None,
    rules: MediaRules | None = None,
    check_media: bool = True,
) -> Report:
    """Check the dataset at ``root`` (source or hub layout).

    Args:
        root: the dataset folder.
        access: ``public`` or ``private``; by default what the folder declares (``test.json``'s
            ``access``, an ``Access:`` line in a hub README), else inferred from the golds.
        rules: media limits (MERA's defaults when None).
        check_media: False skips decoding media (fields and placeholders only).

    Raises:
        DatasetLayoutError: the folder is in neither layout.
    """
    source = open_dataset(root, access)
    report = Report(source.name, source.layout, source.access)
    tracker, balance = SplitTracker(), LetterBalance()
    media = MediaChecker(rules or MediaRules())
    seen: dict[str, int] = {}
    for item in iter_items(source):
        seen[item.split] = seen.get(item.split, 0) + 1
        instruction = resolve_instruction(item, source.prompts, report)
        if not check_fields(item, instruction, report):
            continue
        assert instruction is not None  # check_fields is False otherwise
        check_placeholders(item, instruction, report)
        check_prompt_ending(item, instruction, report)
        balance.add(item, check_options(item, report), report)
        tracker.add(item, instruction)
        if check_media:
            for cell in item.media:
                media.check(item, cell, report)
    if not seen.get("test"):
        report.add("fields", ERROR, "the test split is empty or missing", split="test")
    tracker.finish(report, source.access)
    balance.finish(report)
    report.stats = {
        "items": seen,
        "configs": [c for c in source.configs if c] or None,
        **(media.stats() if check_media else {}),
        **report.stats,
    }
    report.stats = {k: v for k, v in report.stats.items() if v is not None}
    return report
