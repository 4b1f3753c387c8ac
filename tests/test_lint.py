"""The tree stays ruff-clean (lint and format), as the project's conventions ask."""

from __future__ import annotations

import subprocess

from conftest import BIN, REPO


def test_ruff_check_and_format() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([str(BIN / "ruff"), *args], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
