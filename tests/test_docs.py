"""The documentation's commands run, its links resolve, and the task catalogue is current.

Every ```bash block of README.md and docs/**/*.md runs offline on CPU, page by page (the blocks of
a page in order, as a reader would type them), in a temporary copy of the repository, with the
venv's commands on PATH and MERA_DATA_DIR pointing at the session's fixtures mirror. A block that
cannot run there is preceded by a line ``<!-- not-run: REASON -->``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BIN, REPO, TASKS_DIR

from lm_eval_patches.catalogue import stale_pages

PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
FENCE_RE = re.compile(r"^```(\S*)\s*$")
NOT_RUN_RE = re.compile(r"^<!-- not-run: (\S.*\S) -->$")
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
# Pages other helpers are writing in parallel, linked before they are merged (none left now).
PENDING_PAGES: set[str] = set()


@dataclass
class Block:
    page: Path
    line: int
    code: str
    not_run: str | None


def blocks(page: Path) -> list[Block]:
    """The ```bash blocks of ``page`` with the reason they are not run, if any."""
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = FENCE_RE.match(lines[index])
        if not match:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        if match.group(1) == "bash":
            before = [line for line in lines[:index] if line.strip()]
            marker = NOT_RUN_RE.match(before[-1]) if before else None
            code = "\n".join(lines[index + 1 : end])
            found.append(Block(page, index + 1, code, marker.group(1) if marker else None))
        index = end + 1
    return found


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


RUNNABLE = [p for p in PAGES if any(b.not_run is None for b in blocks(p))]


def test_not_run_markers_are_well_formed() -> None:
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if line.lstrip().startswith("<!-- not-run"):
                assert NOT_RUN_RE.match(line), f"{_name(page)}:{number}: malformed marker"
                following = next((x for x in lines[number:] if x.strip()), "")
                assert following.strip() == "```bash", f"{_name(page)}:{number}: marks no block"


def test_blocks_said_to_be_run_elsewhere_are() -> None:
    """``not-run: same as PAGE`` holds only while PAGE runs exactly those lines."""
    for page in PAGES:
        for block in blocks(page):
            match = re.match(r"same as (\S+)", block.not_run or "")
            if match:
                other = REPO / match.group(1)
                ran = "\n".join(b.code for b in blocks(other) if b.not_run is None)
                assert block.code in ran, f"{_name(page)}:{block.line} differs from {other.name}"


def test_most_pages_run_something() -> None:
    names = {_name(p) for p in RUNNABLE}
    expected = {"docs/getting-started.md", "docs/dataset-format.md", "docs/offline.md"}
    assert expected | {"docs/adding-a-dataset.md"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=_name)
def test_page_commands_run(page: Path, mirror: Path, tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("multimodal_tasks", "docs"):
        shutil.copytree(REPO / name, work / name)
    shutil.copy2(REPO / "README.md", work / "README.md")
    # Pages may name the venv's commands by path (.venv/bin/mera-mm), as the Makefile does.
    (work / ".venv").symlink_to(BIN.parent, target_is_directory=True)
    script = "\n".join(
        f"# {_name(page)}:{b.line}\n{b.code}" for b in blocks(page) if b.not_run is None
    )
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MERA_DATA_DIR": str(mirror),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"{_name(page)}: a command failed (exit {proc.returncode})\n--- script ---\n{script}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )


def test_task_catalogue_is_current() -> None:
    stale = stale_pages(TASKS_DIR, REPO / "docs" / "tasks")
    assert not stale, f"stale catalogue pages {stale}: run python -m lm_eval_patches.catalogue"


def test_relative_links_resolve() -> None:
    broken = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in LINK_RE.findall(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists() and _name(path) not in PENDING_PAGES:
                broken.append(f"{_name(page)} -> {target}")
    assert not broken, broken
