"""Peak memory of a ``mera-baseline --log_samples`` run at 10x the docs against 1x.

Media stay lazy (content-hashed references), so peak memory should barely grow with the number
of docs; the target is at most 1.25x. Both runs go through the real ``lm-eval`` CLI on fixture
data (1024x768 JPEGs for image tasks; generated MP4/MOV clips for video tasks) in fresh
processes, measured side by side; printed as ratios.

    python bench/bench_memory.py [--docs 100] [--factor 10] [--task weird commonvideoqa]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK_DATASETS = {
    "weird": "WEIRD",
    "ruclevr": "ruCLEVR",
    "rucommonvqa": "ruCommonVQA",
    "commonvideoqa": "CommonVideoQA",
    "ruenvaqa": "ruEnvAQA",
}
IMAGE_TASKS = {"weird", "ruclevr", "rucommonvqa"}
REPO = Path(__file__).resolve().parents[1]


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd``; return (peak RSS in MiB, wall seconds) of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{stderr[-3000:]}")
    return usage.ru_maxrss / 1024, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100, help="test docs of the 1x run")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument(
        "--task", nargs="+", default=["weird", "commonvideoqa"], choices=sorted(TASK_DATASETS)
    )
    args = parser.parse_args()
    for task in args.task:
        measure(task, args.docs, args.factor)
    return 0


def measure(task: str, base_docs: int, factor: int) -> None:
    """Run ``task`` at ``base_docs`` and ``factor`` times as many docs; print the ratios."""
    bin_dir = Path(sys.executable).parent
    rows = []
    with tempfile.TemporaryDirectory(prefix="mera-bench-") as tmp:
        for docs in (base_docs, base_docs * factor):
            data = Path(tmp) / f"data{docs}"
            size = ["--image-size", "1024x768"] if task in IMAGE_TASKS else []
            subprocess.run(
                [
                    str(bin_dir / "mera-mm"),
                    "fixtures",
                    "--out",
                    str(data),
                    "--datasets",
                    TASK_DATASETS[task],
                    "--test",
                    str(docs),
                    *size,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            env = {
                **os.environ,
                "MERA_DATA_DIR": str(data),
                "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1",
                "HF_DATASETS_CACHE": str(Path(tmp) / f"c{docs}"),
            }
            cmd = [
                str(bin_dir / "lm-eval"),
                "--model",
                "mera-baseline",
                "--include_path",
                str(REPO / "multimodal_tasks"),
                "--tasks",
                task,
                "--log_samples",
                "--output_path",
                str(Path(tmp) / f"out{docs}"),
            ]
            # First run: datasets also converts the parquet files into its Arrow cache (a
            # one-time cost of the library, per dataset version). Second run: a normal run.
            cold = run_measured(cmd, env)
            warm = run_measured(cmd, env)
            media = sum(p.stat().st_size for p in data.rglob("*.parquet")) / 2**20
            rows.append((docs, media, cold, warm))
    (n1, media1, cold1, warm1), (n10, media10, cold10, warm10) = rows
    kind = "1024x768 JPEG images" if task in IMAGE_TASKS else "generated media"
    print(f"\ntask {task}, {kind}, mera-baseline --log_samples, lm-eval CLI")
    print(
        f"{'docs':>6} {'media MiB':>10} {'RSS MiB (run)':>14} {'wall s':>7} "
        f"{'RSS MiB (first use)':>20} {'wall s':>7}"
    )
    for docs, media, cold, warm in rows:
        print(
            f"{docs:>6} {media:>10.1f} {warm[0]:>14.1f} {warm[1]:>7.1f} "
            f"{cold[0]:>20.1f} {cold[1]:>7.1f}"
        )
    ratio = warm10[0] / warm1[0]
    print(
        f"peak memory ratio {n10}/{n1} docs, run on a prepared dataset: {ratio:.3f}x "
        f"(target <= 1.25x: {'met' if ratio <= 1.25 else 'NOT met'})"
    )
    print(
        f"peak memory ratio {n10}/{n1} docs, first use (includes datasets' one-time "
        f"parquet-to-Arrow conversion): {cold10[0] / cold1[0]:.3f}x"
    )
    print(
        f"wall time ratio {n10}/{n1} docs: {warm10[1] / warm1[1]:.2f}x run, "
        f"{cold10[1] / cold1[1]:.2f}x first use (media grew {media10 / media1:.1f}x)"
    )


if __name__ == "__main__":
    sys.exit(main())
