"""``mera-mm mirror`` against a stand-in hub on 127.0.0.1 (real HTTP, real huggingface_hub).

The stand-in serves fixture datasets as hub repositories. Covered: a download killed midway and
run again (only the missing file is fetched), a connection cut mid-file (resumed with a Range
request), corrupt bytes caught by verification, a private set without and with HF_TOKEN, and the
mirror read offline through MERA_DATA_DIR.

huggingface_hub writes a body in 10 MiB chunks and restarts a shorter one from its first byte, so
the repository served in the resume test also holds a 16 MiB file (``extras/large.bin``, as a
media archive would be) that is cut after 12 MiB.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, CONTRIBUTED_DATASETS, REPO, TASKS_DIR
from hub_standin import TOKEN, Behaviour, HubStandin

from lm_eval_patches.fixtures.builder import build_fixtures
from lm_eval_patches.task_pack import dataset_paths

pytestmark = pytest.mark.slow
TEST_FILE = "data/test-00000-of-00001.parquet"
LARGE_FILE = "extras/large.bin"
MIB = 1 << 20


@pytest.fixture(scope="module")
def hub_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hub-source")
    build_fixtures(out, ["WEIRD", "ruEnvAQA"])
    return out


def _env(tmp: Path, token: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_ENDPOINT")}
    env.update(HF_HUB_OFFLINE="0", HF_HOME=str(tmp / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    if token:
        env["HF_TOKEN"] = token
    return env


def _mirror_cmd(hub: HubStandin, out: Path, *datasets: str) -> list[str]:
    return [
        str(BIN / "mera-mm"),
        "mirror",
        "--out",
        str(out),
        "--endpoint",
        hub.url,
        "--max-workers",
        "1",
        "--datasets",
        *datasets,
    ]


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_killed_download_resumes_and_mirror_loads_offline(
    hub_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_id = "MERA-evaluation/WEIRD"
    source = tmp_path / "source"
    shutil.copytree(hub_source / repo_id, source)
    (source / LARGE_FILE).parent.mkdir()
    (source / LARGE_FILE).write_bytes(random.Random(0).randbytes(16 * MIB))
    behaviour = Behaviour(hold={LARGE_FILE}, cut_at=12 * MIB)
    out = tmp_path / "mirror"
    with HubStandin({repo_id: source}, behaviour) as hub:
        first = subprocess.Popen(
            _mirror_cmd(hub, out, repo_id),
            env=_env(tmp_path),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert behaviour.holding.wait(timeout=90), "the client never reached the held file"
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        local = out / repo_id
        assert (local / "README.md").is_file()
        assert (local / TEST_FILE).is_file()
        assert not (local / LARGE_FILE).exists()  # killed half way through this one
        assert not (local / ".mera-mirror.json").exists()

        behaviour.hold.clear()
        behaviour.cut_once.add(LARGE_FILE)  # and the network drops once more mid-file
        hub.log.clear()
        second = _run(_mirror_cmd(hub, out, repo_id), _env(tmp_path))
        assert second.returncode == 0, second.stdout + second.stderr
        fetched = hub.gets()
        assert {p.split("/resolve/")[1].split("/", 1)[1] for p, _ in fetched} == {LARGE_FILE}
        assert [r for _, r in fetched] == [None, f"bytes={10 * MIB}-"]  # resumed, not restarted
    assert "1/1 dataset(s) mirrored" in second.stdout
    assert (local / LARGE_FILE).read_bytes() == (source / LARGE_FILE).read_bytes()
    assert (local / ".mera-mirror.json").is_file()

    from lm_eval_patches.tasks.data import load_source

    monkeypatch.setenv("MERA_DATA_DIR", str(out))
    loaded = load_source("weird", repo_id, None)
    assert loaded["test"].num_rows == 8 and loaded["shots"].num_rows == 3


def test_corrupt_file_and_private_set(hub_source: Path, tmp_path: Path) -> None:
    public, private = "MERA-evaluation/WEIRD", "MERA-evaluation/ruEnvAQA"
    behaviour = Behaviour(corrupt={TEST_FILE}, private={private})
    out = tmp_path / "mirror"
    repos = {public: hub_source / public, private: hub_source / private}
    with HubStandin(repos, behaviour) as hub:
        first = _run(_mirror_cmd(hub, out, public, private), _env(tmp_path))
        assert first.returncode == 1
        assert f"{public}: 1 file(s) failed verification" in first.stdout
        assert TEST_FILE in first.stdout and "sha256" in first.stdout
        assert not (out / public / TEST_FILE).exists()  # deleted, so a re-run fetches it
        assert f"no access to {private}" in first.stdout and "HF_TOKEN" in first.stdout

        behaviour.corrupt.clear()
        second = _run(_mirror_cmd(hub, out, public, private), _env(tmp_path, token=TOKEN))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2/2 dataset(s) mirrored" in second.stdout
    assert (out / private / ".mera-mirror.json").is_file()


def test_task_and_group_names_resolve_to_hub_ids() -> None:
    assert dataset_paths(TASKS_DIR, ["weird"]) == ["MERA-evaluation/WEIRD"]
    assert dataset_paths(TASKS_DIR, ["schoolsciencevqa_biology", "schoolsciencevqa"]) == [
        "MERA-evaluation/SchoolScienceVQA"
    ]
    assert len(dataset_paths(TASKS_DIR, ["mera_multimodal"])) == 18
    assert len(dataset_paths(TASKS_DIR, ["mera_private"])) == 11
    contributed = set(CONTRIBUTED_DATASETS.values())  # tasks added with `mera-mm new-task`
    assert len(set(dataset_paths(TASKS_DIR)) - contributed) == 18
    with pytest.raises(ValueError, match="not a task or group"):
        dataset_paths(TASKS_DIR, ["nosuchtask"])


def test_offline_mode_and_an_empty_pack_are_refused(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = _run([str(BIN / "mera-mm"), "mirror", "--out", str(tmp_path / "m")], env)
    assert proc.returncode == 2 and "unset HF_HUB_OFFLINE" in proc.stderr
    with pytest.raises(ValueError, match="holds no task YAMLs"):
        dataset_paths(tmp_path, ["weird"])
