"""Findings of a dataset check and how they are printed (text for people, JSON for machines)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

ERROR = "error"  # the dataset must not be uploaded like this
WARNING = "warning"  # worth a human look; fails only with --strict


@dataclass(frozen=True)
class Finding:
    """One problem: which check, how bad, where (split, config, doc id, field) and what."""

    check: str
    severity: str
    message: str
    split: str | None = None
    config: str | None = None
    doc_id: Any = None
    field: str | None = None

    def where(self) -> str:
        """``split test, config biology, doc 12, inputs.image`` (the parts that are known)."""
        parts = []
        if self.split:
            parts.append(f"split {self.split}")
        if self.config:
            parts.append(f"config {self.config}")
        if self.doc_id is not None:
            parts.append(f"doc {self.doc_id}")
        if self.field:
            parts.append(self.field)
        return ", ".join(parts) or "dataset"


@dataclass
class Report:
    """Everything one run of the checks found, plus a few facts about the dataset."""

    dataset: str
    layout: str
    access: str | None = None
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def add(self, check: str, severity: str, message: str, **where: Any) -> None:
        """Record a finding (``where``: split, config, doc_id, field)."""
        self.findings.append(Finding(check, severity, message, **where))

    def errors(self) -> list[Finding]:
        """Findings that fail the check."""
        return [f for f in self.findings if f.severity == ERROR]

    def warnings(self) -> list[Finding]:
        """Findings for a human to review (they fail only with ``strict``)."""
        return [f for f in self.findings if f.severity == WARNING]

    def failed(self, strict: bool = False) -> bool:
        """True when there is an error (or, with ``strict``, any finding at all)."""
        return bool(self.errors() or (strict and self.warnings()))

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form: dataset, layout, access, ok, counts per check, findings, stats."""
        return {
            "dataset": self.dataset,
            "layout": self.layout,
            "access": self.access,
            "ok": not self.errors(),
            "errors": len(self.errors()),
            "warnings": len(self.warnings()),
            "by_check": dict(Counter(f.check for f in self.findings)),
            "findings": [asdict(f) for f in self.findings],
            "stats": self.stats,
        }

    def to_json(self) -> str:
        """``as_dict`` as indented JSON text."""
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=2, default=str)

    def to_text(self, limit_per_check: int = 20) -> str:
        """A readable report: a summary line, then findings grouped by check."""
        lines = [
            f"dataset {self.dataset} ({self.layout} layout, access {self.access or 'unknown'})",
        ]
        for key, value in self.stats.items():
            lines.append(f"  {key}: {value}")
        by_check: dict[str, list[Finding]] = {}
        for finding in self.findings:
            by_check.setdefault(finding.check, []).append(finding)
        for check, items in by_check.items():
            worst = ERROR if any(f.severity == ERROR for f in items) else WARNING
            lines.append(f"{worst.upper()} {check}: {len(items)} finding(s)")
            for finding in items[:limit_per_check]:
                lines.append(f"  - {finding.where()}: {finding.message}")
            if len(items) > limit_per_check:
                lines.append(f"  ... and {len(items) - limit_per_check} more (see --json)")
        verdict = "FAILED" if self.errors() else "OK"
        lines.append(f"{verdict}: {len(self.errors())} error(s), {len(self.warnings())} warning(s)")
        return "\n".join(lines)
