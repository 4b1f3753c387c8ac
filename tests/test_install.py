"""A regular (non-editable) install makes plain lm-eval see our backends, flags and tasks.

The editable install is what every other CLI test runs against; this one builds the wheel,
installs it into a fresh virtual environment (sharing only the third-party packages of the
test environment), and runs lm-eval from a folder outside the repository.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

from conftest import REPO, TASKS_DIR


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def test_wheel_install_registers_backends_and_flags(mirror: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(wheels),
            str(REPO),
        ]
    )
    wheel = next(wheels.glob("mera_multimodal-*.whl"))

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    new_site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    # Third-party packages come from the test environment (no network needed); its .pth files
    # (including our editable install's) are NOT processed for a plain path entry.
    (new_site / "_test_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)])
    assert (new_site / "mera_multimodal.pth").exists()

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {**os.environ, "MERA_DATA_DIR": str(mirror)}
    code = (
        "import lm_eval.api.registry as r, lm_eval_patches as p; print(p.__file__);"
        "print(r.model_registry._objs['mera-baseline']);"
        "print(r.model_registry._objs['hf-multimodal']); print('hf' in r.model_registry)"
    )
    where = _run([str(python), "-c", code], cwd=workdir, env=env).stdout.splitlines()
    assert where[0].startswith(str(new_site)), where
    assert where[1].startswith("lm_eval_patches.models.baseline")
    assert where[2].startswith("lm_eval_patches.models.hf_multimodal")
    assert where[3] == "True"  # upstream backends are still there

    out = tmp_path / "out"
    _run(
        [
            str(python),
            "-m",
            "lm_eval",
            "--model",
            "mera-baseline",
            "--include_path",
            str(TASKS_DIR),
            "--tasks",
            "weird",
            "--limit",
            "3",
            "--apply_chat_template",
            "--pass_multimodal_args_to_chat_history",
            "--replace_videos_with_images_amount",
            "8",
            "--output_path",
            str(out),
        ],
        cwd=workdir,
        env=env,
    )
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    assert results["results"]["weird"]["exact_match,none"] >= 0.0
