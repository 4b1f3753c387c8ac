"""Reading lm-eval's output files: ``results_<date>.json`` and ``samples_<task>_<date>.jsonl``.

lm-eval 0.4.13 writes both into ``<output_path>/<model name>/`` with one ``<date>`` per run
(an ISO timestamp with ``:`` as ``-``; microseconds may be absent). A run is one results file
with the samples files of the same date; a folder may hold several runs, and the newest wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

DATE = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
_RESULTS = re.compile(rf"^results_({DATE})\.json$")
_SAMPLES = re.compile(rf"^samples_(.+)_({DATE})\.jsonl$")


class RunLogError(ValueError):
    """A run folder without usable logs, or a log that cannot be read (names the file)."""


def parse_date(text: str) -> datetime:
    """The datetime of an lm-eval file date (``2025-01-31T12-00-00.123456`` or without ``.f``)."""
    fmt = "%Y-%m-%dT%H-%M-%S.%f" if "." in text else "%Y-%m-%dT%H-%M-%S"
    return datetime.strptime(text, fmt)


@dataclass
class RunLogs:
    """One lm-eval run: its results file and the samples file of each task."""

    folder: Path
    date: str
    results_path: Path
    results: dict[str, Any]
    samples_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short label for the run: the model name lm-eval recorded, else the folder name."""
        args = self.results.get("config", {}).get("model_args")
        model = self.results.get("model_name") or ""
        if not model and isinstance(args, str):
            model = args
        return model or self.folder.name

    def samples(self, task: str) -> Iterator[dict[str, Any]]:
        """The logged samples of ``task`` (RunLogError naming file and line if one is bad)."""
        path = self.samples_paths[task]
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RunLogError(f"{path}, line {number}: not JSON ({exc.msg})") from exc


def _runs_in(folder: Path) -> list[RunLogs]:
    runs = []
    for path in folder.iterdir():
        match = _RESULTS.match(path.name)
        if not match:
            continue
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunLogError(f"{path}: cannot read the results file ({exc})") from exc
        runs.append(RunLogs(folder, match.group(1), path, results))
    for path in folder.iterdir():
        match = _SAMPLES.match(path.name)
        if match:
            for run in runs:
                if run.date == match.group(2):
                    run.samples_paths[match.group(1)] = path
    return runs


def find_run(run_dir: str | Path) -> RunLogs:
    """The newest run under ``run_dir`` (the ``--output_path`` or the model folder inside it).

    Raises RunLogError when no results file with samples logs is there (the run needs
    ``--log_samples``).
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise RunLogError(f"{root}: no such folder")
    folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    runs = [run for folder in folders for run in _runs_in(folder)]
    if not runs:
        raise RunLogError(f"{root}: no results_<date>.json of an lm-eval run in it")
    runs.sort(key=lambda r: parse_date(r.date))
    newest = runs[-1]
    if not newest.samples_paths:
        raise RunLogError(
            f"{newest.results_path}: the run has no samples_*.jsonl beside it; "
            "run lm-eval with --log_samples to score or report it"
        )
    return newest
