"""Stable problem codes of the submission validator (documented in docs/submission.md).

The MERA text benchmark's scorer reports submission errors by code; we follow that idea with our
own codes. ``MM1xx``: the zip itself; ``MM2xx``: names and layout; ``MM3xx``: a dataset file's
JSON; ``MM4xx``: ids against the data; ``MM5xx``: completeness. Codes never change meaning; new
problems get new codes.

Severities: ``error`` (the site would reject or misread the archive), ``incomplete`` (something
is missing for a complete submission: allowed with ``--allow-partial``), ``warning`` (packed as
is, but worth a look).
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR, INCOMPLETE, WARNING = "error", "incomplete", "warning"


@dataclass(frozen=True)
class Code:
    """One kind of problem: its code, severity and one-line explanation."""

    code: str
    severity: str
    summary: str


_ALL = [
    # -- the zip itself (also the nested logs_public.zip) ----------------------------------------
    Code("MM101", ERROR, "not a readable zip archive"),
    Code("MM102", ERROR, "unsafe member name (absolute path, '..', drive letter or backslash)"),
    Code("MM103", ERROR, "member is a symlink or another non-regular file"),
    Code("MM104", ERROR, "too many members"),
    Code("MM105", ERROR, "member or archive too large once unpacked (declared sizes)"),
    Code("MM106", ERROR, "member's compression ratio is that of a zip bomb"),
    Code("MM107", ERROR, "member unpacks to more than it declares, or is corrupt (bad CRC)"),
    Code("MM108", ERROR, "member name appears more than once"),
    Code("MM109", ERROR, "member is encrypted"),
    # -- names and layout ----------------------------------------------------------------------
    Code("MM201", ERROR, "file is not one of the 18 MERA Multi dataset files nor logs_public.zip"),
    Code("MM202", ERROR, "file is inside a folder; the site reads files at the archive's root"),
    Code("MM203", ERROR, "file name differs from the dataset's file name only in letter case"),
    Code("MM204", ERROR, "logs_public.zip is missing"),
    Code("MM205", ERROR, "logs_public.zip holds no samples log (samples_<task>_<date>.jsonl)"),
    Code("MM206", WARNING, "logs_public.zip holds a file that is no lm-eval samples/results log"),
    Code("MM207", ERROR, "the archive holds no dataset file"),
    # -- one dataset file's JSON ---------------------------------------------------------------
    Code("MM301", ERROR, "not UTF-8 JSON"),
    Code("MM302", ERROR, 'not shaped {"data": {"test": [...]}}'),
    Code("MM303", ERROR, 'entry not shaped {"outputs": <string>, "meta": {"id": <integer>}}'),
    Code("MM304", WARNING, "entry's answer is empty"),
    # -- ids against the dataset's test split ---------------------------------------------------
    Code("MM401", ERROR, "id answered more than once"),
    Code("MM402", ERROR, "id is not in the dataset's test split"),
    Code("MM403", INCOMPLETE, "the dataset's test ids could not be loaded: ids not checked"),
    # -- completeness --------------------------------------------------------------------------
    Code("MM501", INCOMPLETE, "test ids of the dataset are not answered"),
    Code("MM502", INCOMPLETE, "dataset missing from the archive"),
]

CODES: dict[str, Code] = {c.code: c for c in _ALL}


@dataclass(frozen=True)
class Problem:
    """One problem found: its code, where (a file or member name) and the details."""

    code: str
    where: str
    detail: str = ""

    @property
    def severity(self) -> str:
        """The code's severity: error, incomplete or warning."""
        return CODES[self.code].severity

    def __str__(self) -> str:
        text = f"{self.code} {self.where}: {CODES[self.code].summary}"
        return f"{text} ({self.detail})" if self.detail else text
