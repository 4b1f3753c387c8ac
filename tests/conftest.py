"""Shared test set-up: offline, an isolated datasets cache, and one fixture mirror per session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Before anything imports `datasets`/`transformers`: never touch the network or the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="mera-tests-datasets-"))
for switch in ("LOAD_OBJECT", "LOAD_BYTES", "LOAD_BASE64", "LOAD_FILES", "MERA_DATA_DIR"):
    os.environ.pop(switch, None)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TASKS_DIR = REPO / "multimodal_tasks"
BIN = Path(sys.executable).parent

SCIENCE_CONFIGS = {
    "runaturalsciencevqa": ("biology", "chemistry", "physics", "earth_science"),
    "schoolsciencevqa": (
        "biology",
        "chemistry",
        "physics",
        "earth_science",
        "history_all",
        "history_ru",
        "economics",
    ),
    "unisciencevqa": (
        "applied_sciences",
        "business",
        "cultural_studies",
        "fundamental_sciences",
        "social_sciences",
        "health_and_medicine",
    ),
}
IMAGE_TASKS = [
    "rucommonvqa",
    "ruclevr",
    "weird",
    "labtabvqa",
    "realvqa",
    "ruhhh_image",
    "rumathvqa",
    "rutie_vision_gen",
    *(f"{group}_{config}" for group, configs in SCIENCE_CONFIGS.items() for config in configs),
]
AUDIO_TASKS = ["ruenvaqa", "ruslun", "aquaria", "rutie_audio_gen"]
VIDEO_TASKS = ["commonvideoqa", "realvideoqa", "ruhhh_video"]
ALL_TASKS = IMAGE_TASKS + AUDIO_TASKS + VIDEO_TASKS  # every leaf task of the MERA groups
# Runnable by name but in no group (ruTiE's no-history variants; the groups count _gen).
STANDALONE_TASKS = ["rutie_vision_default", "rutie_audio_default"]


def _contributed_tasks() -> dict[str, str]:
    """``{task: dataset_path}`` of the tasks added with ``mera-mm new-task``: every task YAML in a
    folder of the pack that declares its fixture data (``fixture.yaml``). The MERA lists above
    stay exact; these come on top, so a scaffolded task passes the suite as written."""
    from lm_eval_patches.fixtures.declared import FIXTURE_FILE
    from lm_eval_patches.skills import task_datasets

    found: dict[str, str] = {}
    for spec in sorted(TASKS_DIR.glob(f"*/{FIXTURE_FILE}")):
        found.update(task_datasets(spec.parent))
    return found


CONTRIBUTED_DATASETS = _contributed_tasks()  # task -> hub id
CONTRIBUTED_TASKS = sorted(CONTRIBUTED_DATASETS)


def write_variant(name: str, breakers: dict, out: Path, options=None) -> dict[int, int]:
    """Write fixture dataset ``name`` with ``breakers[index](record)`` applied to those test
    docs (to break them on purpose); returns {index: meta.id} of the changed docs."""
    import dataclasses

    from lm_eval_patches.fixtures.builder import FixtureOptions, select_specs, write_dataset

    (spec,) = select_specs([name])
    make, ids = spec.make_record, {}

    def make_record(ctx):
        record = make(ctx)
        if ctx.split == "test" and ctx.index in breakers:
            breakers[ctx.index](record)
            ids[ctx.index] = record["meta"]["id"]
        return record

    write_dataset(
        dataclasses.replace(spec, make_record=make_record), out, options or FixtureOptions()
    )
    return ids


@pytest.fixture(autouse=True)
def _fresh_run_options():
    """Each test starts with default run options (CLI flags set them process-wide)."""
    import dataclasses

    from lm_eval_patches.settings import RUN_OPTIONS

    saved = dataclasses.asdict(RUN_OPTIONS)
    yield
    for name, value in saved.items():
        setattr(RUN_OPTIONS, name, value)


@pytest.fixture(scope="session")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fixture dataset, contributed tasks' included, written once per session (golds
    everywhere)."""
    from lm_eval_patches.fixtures.builder import build_fixtures

    out = tmp_path_factory.mktemp("mirror")
    build_fixtures(out, include_paths=[TASKS_DIR])
    return out


@pytest.fixture
def mera_env(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MERA_DATA_DIR pointing at the session mirror."""
    monkeypatch.setenv("MERA_DATA_DIR", str(mirror))
    return mirror


def run_cli(
    args: list[str],
    env_extra: dict[str, str],
    cwd: Path | None = None,
    program: str = "lm-eval",
    timeout: int = 600,
    returncode: int = 0,
) -> subprocess.CompletedProcess:
    """Run one of the venv's console scripts; fail with its output unless it exits with
    ``returncode``."""
    env = {**os.environ, **env_extra}
    proc = subprocess.run(
        [str(BIN / program), *args],
        env=env,
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != returncode:
        pytest.fail(
            f"{program} {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


BASELINE_MODEL_ARGS = "model=mera-baseline,seed=1234"


@pytest.fixture(scope="session")
def baseline_run(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `make demo`-like run (mera-baseline over mera_multimodal, samples logged) per
    session; returns lm-eval's --output_path. Tests must not write into it."""
    out = tmp_path_factory.mktemp("baseline-run")
    run_cli(
        [
            "--model",
            "mera-baseline",
            "--model_args",
            BASELINE_MODEL_ARGS,
            "--include_path",
            str(TASKS_DIR),
            "--tasks",
            "mera_multimodal",
            "--log_samples",
            "--output_path",
            str(out),
        ],
        {"MERA_DATA_DIR": str(mirror)},
    )
    return out
