"""Validate a MERA Multi submission archive (MERA_SPEC section 11; codes in ``codes``).

Checks, in order: the zip is safe to read (``safezip``); every file at its root is one of the 18
dataset files or ``logs_public.zip``; each dataset file is UTF-8 JSON shaped
``{"data": {"test": [{"outputs": str, "meta": {"id": int}}, ...]}}``; each id is answered once
and belongs to the dataset's test split (ids from the data, see ``expected``); and what is
missing for a complete submission (datasets, and test ids of the datasets present).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_patches.submission.codes import ERROR, INCOMPLETE, WARNING, Problem
from lm_eval_patches.submission.expected import ExpectedIds
from lm_eval_patches.submission.logs import split_log_name
from lm_eval_patches.submission.safezip import SafeZip, ZipLimits
from lm_eval_patches.submission.table import BY_FILE, LOGS_ZIP, SUBMISSION_DATASETS

SHOWN_IDS = 10  # ids listed in one problem line


def _ids_text(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:SHOWN_IDS]))
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > SHOWN_IDS else "")


@dataclass
class DatasetCheck:
    """One dataset file of the archive: how many answers, and against the data."""

    file: str
    answered: int
    expected: int | None  # test ids in the data (None: could not be loaded)
    missing: list[int] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Everything the validator found about one archive."""

    archive: Path
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, DatasetCheck] = field(default_factory=dict)
    missing_files: list[str] = field(default_factory=list)

    def by_severity(self, severity: str) -> list[Problem]:
        """The problems of one severity (``codes.ERROR``, ``INCOMPLETE`` or ``WARNING``)."""
        return [p for p in self.problems if p.severity == severity]

    @property
    def complete(self) -> bool:
        """All 18 datasets present, every test id answered, ids checked against the data."""
        return not self.by_severity(ERROR) and not self.by_severity(INCOMPLETE)

    def ok(self, allow_partial: bool = False) -> bool:
        """No errors, and complete unless ``allow_partial``."""
        return not self.by_severity(ERROR) and (allow_partial or not self.by_severity(INCOMPLETE))

    def lines(self) -> list[str]:
        """The report as text lines for the terminal."""
        out = [f"archive {self.archive}"]
        for file, check in sorted(self.checked.items(), key=lambda kv: kv[0].lower()):
            against = (
                "test ids not checked"
                if check.expected is None
                else f"{check.expected - len(check.missing)} of {check.expected} test ids"
            )
            out.append(f"  {file}: {check.answered} answers, {against}")
        for severity, title in ((ERROR, "errors"), (WARNING, "warnings")):
            found = self.by_severity(severity)
            if found:
                out.append(f"{title}:")
                out += [f"  {p}" for p in found]
        incomplete = self.by_severity(INCOMPLETE)
        unchecked = [p for p in incomplete if p.code == "MM403"]
        missing = [p for p in incomplete if p.code != "MM403"]
        if missing:
            out.append("missing for a complete submission:")
            out += [f"  {p}" for p in missing]
        if unchecked:
            out.append("test ids not checked:")
            out += [f"  {p}" for p in unchecked]
        errors = len(self.by_severity(ERROR))
        if errors:
            out.append(f"INVALID: {errors} error(s)")
        elif incomplete and not missing:
            out.append(
                f"valid, but test ids NOT checked for {len(unchecked)} dataset(s) (listed above):"
                " completeness unknown"
            )
        elif incomplete:
            present = len(self.checked)
            out.append(
                f"valid but PARTIAL: {present} of {len(SUBMISSION_DATASETS)} datasets, "
                f"{len(incomplete)} gap(s) listed above"
            )
        else:
            out.append(f"valid and complete: all {len(SUBMISSION_DATASETS)} datasets")
        return out


def _entries_problems(file: str, entries: list) -> tuple[list[int], list[Problem]]:
    """Ids of well-formed entries, and problems with the rest."""
    ids, bad, empty = [], [], 0
    for index, entry in enumerate(entries):
        meta = entry.get("meta") if isinstance(entry, dict) else None
        doc_id = meta.get("id") if isinstance(meta, dict) else None
        outputs = entry.get("outputs") if isinstance(entry, dict) else None
        if not isinstance(outputs, str) or isinstance(doc_id, bool) or not isinstance(doc_id, int):
            bad.append(index)
            continue
        ids.append(doc_id)
        empty += not outputs.strip()
    problems = []
    if bad:
        problems.append(Problem("MM303", file, f"entries at positions {_ids_text(bad)}"))
    if empty:
        problems.append(Problem("MM304", file, f"{empty} entr{'y' if empty == 1 else 'ies'}"))
    return ids, problems


def check_dataset_file(
    file: str, raw: bytes, expected: ExpectedIds
) -> tuple[DatasetCheck | None, list[Problem]]:
    """Check one dataset file's bytes; returns its summary (None if unreadable) and problems."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [Problem("MM301", file, str(exc))]
    inner = data.get("data") if isinstance(data, dict) else None
    entries = inner.get("test") if isinstance(inner, dict) else None
    if not isinstance(entries, list):
        return None, [Problem("MM302", file)]
    ids, problems = _entries_problems(file, entries)
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        problems.append(Problem("MM401", file, f"ids {_ids_text(repeated)}"))
    dataset = BY_FILE[file]
    known = expected.get(dataset)
    if known is None:
        problems.append(Problem("MM403", file, expected.errors.get(file, "")))
        return DatasetCheck(file, len(ids), None), problems
    known_set, answered = set(known), set(ids)
    unknown = sorted(answered - known_set)
    if unknown:
        problems.append(Problem("MM402", file, f"ids {_ids_text(unknown)}"))
    missing = [i for i in known if i not in answered]
    if missing:
        problems.append(
            Problem("MM501", file, f"{len(missing)} of {len(known)}: ids {_ids_text(missing)}")
        )
    return DatasetCheck(file, len(ids), len(known), missing), problems


def check_logs_zip(raw: bytes, limits: ZipLimits) -> list[Problem]:
    """Check the nested logs_public.zip: safe, holding lm-eval samples (and results) logs."""
    with SafeZip.open(raw, LOGS_ZIP, limits) as logs:
        samples = 0
        for name in logs.files:
            base = name.rsplit("/", 1)[-1]
            if split_log_name(base, "samples_"):
                samples += 1
            elif not split_log_name(base, "results_"):
                logs.problems.append(Problem("MM206", f"{LOGS_ZIP}: {name}"))
            logs.verify(name)
        if not samples and not any(p.code in ("MM101", "MM104") for p in logs.problems):
            logs.problems.append(Problem("MM205", LOGS_ZIP))
        return logs.problems


def validate_archive(
    archive: str | Path,
    data_dir: str | Path | None = None,
    limits: ZipLimits | None = None,
    expected: ExpectedIds | None = None,
) -> ValidationReport:
    """Validate ``archive``; never raises for a bad archive (every problem is in the report).

    ``data_dir``: a hub-layout mirror to read test ids from (default: ``MERA_DATA_DIR``, then
    the hub). ``limits``: bounds for the zip and the nested logs zip.
    """
    path = Path(archive)
    limits = limits or ZipLimits()
    expected = expected or ExpectedIds(data_dir)
    report = ValidationReport(path)
    lower = {f.lower(): f for f in BY_FILE}
    found: list[Problem] = []
    with SafeZip.open(path, path.name, limits) as zipped:
        if any(p.code in ("MM101", "MM104") for p in zipped.problems):
            report.problems = list(zipped.problems)
            return report
        found += [Problem("MM202", folder) for folder in zipped.folders]
        has_logs = False
        for name in list(zipped.files):
            if "/" in name:
                found.append(Problem("MM202", name))
            elif name == LOGS_ZIP:
                has_logs = True
                raw = zipped.read(name)
                if raw is not None:
                    found += check_logs_zip(raw, limits)
            elif name in BY_FILE:
                raw = zipped.read(name)
                if raw is None:
                    continue
                check, problems = check_dataset_file(name, raw, expected)
                found += problems
                if check:
                    report.checked[name] = check
            elif name.lower() in lower:
                found.append(Problem("MM203", name, f"expected {lower[name.lower()]}"))
            else:
                found.append(Problem("MM201", name))
        # Members refused by the zip checks (or unreadable) carry their own problems.
        refused_logs = any(p.where.endswith(LOGS_ZIP) for p in zipped.problems)
        if not has_logs and not refused_logs:
            found.append(Problem("MM204", path.name))
        report.problems = list(zipped.problems) + found
    if not report.checked:
        report.problems.append(Problem("MM207", path.name))
    for dataset in SUBMISSION_DATASETS:
        refused = any(
            p.where == dataset.file or p.where.endswith(f": {dataset.file}")
            for p in report.problems
        )
        if dataset.file not in report.checked and not refused:
            report.missing_files.append(dataset.file)
            report.problems.append(Problem("MM502", dataset.file))
    return report
