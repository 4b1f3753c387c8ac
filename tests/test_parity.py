"""``mera-mm parity``: two runs of one sample set, compared doc by doc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TASKS_DIR

from lm_eval_patches.cli import main
from lm_eval_patches.commands.parity import DIFFERS_STATUS, compare


def test_compare_names_each_differing_doc() -> None:
    first = {("t", 0): (10, "A"), ("t", 1): (11, "B"), ("u", 0): (20, "x")}
    second = {("t", 0): (10, "A"), ("t", 1): (11, "C")}
    report = compare(first, second)
    assert report["t"]["compared"] == 2 and report["t"]["equal"] == 1
    assert report["t"]["differ"] == [{"doc_id": 1, "id": 11, "a": "B", "b": "C"}]
    # A doc only one side answered is a difference, not silently skipped.
    assert report["u"]["differ"] == [{"doc_id": 0, "id": 20, "a": "x", "b": None}]


@pytest.mark.slow
def test_parity_cli_reports_differing_docs(mera_env: Path, tmp_path: Path, capsys) -> None:
    """Two seeds of the chance-level baseline: the differing docs are printed with both
    answers, written as JSON, and the exit status says they differ."""
    out = tmp_path / "parity.json"
    status = main(
        ["parity", "--model", "mera-baseline", "--tasks", "ruenvaqa", "--limit", "6",
         "--include_path", str(TASKS_DIR), "--model_args", "seed=1",
         "--other_model_args", "seed=2", "--output", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())["tasks"]["ruenvaqa"]
    assert status == DIFFERS_STATUS and report["compared"] == 6
    differing = report["differ"]
    assert differing and report["equal"] == 6 - len(differing)
    assert f"ruenvaqa: {6 - len(differing)}/6 answers equal" in printed
    first = differing[0]
    assert f"doc {first['doc_id']} (id {first['id']})" in printed and first["a"] != first["b"]
    assert f"A: {first['a']!r}" in printed and f"B: {first['b']!r}" in printed
