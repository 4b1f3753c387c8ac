"""The report's sample browser at 10x the samples: page load and filter time in chromium.

Two real runs of ``mera-baseline`` (plain lm-eval CLI, fixture data) at N and 10N test docs per
dataset config, one report each (media included), opened side by side in Debian's chromium. The
browser builds only one page of samples, so opening and filtering should cost about the same at
10x the samples (target: <= 2x); page size grows with the embedded media.

    python bench/bench_report.py [--docs 25] [--tasks weird,ruenvaqa,commonvideoqa,ruhhh_image]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATASETS = {
    "weird": "WEIRD",
    "ruenvaqa": "ruEnvAQA",
    "commonvideoqa": "CommonVideoQA",
    "ruhhh_image": "ruHHH-Image",
    "ruclevr": "ruCLEVR",
    "ruslun": "ruSLUn",
}


def _run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, env={**os.environ, **env}, check=True, capture_output=True)


def build(root: Path, docs: int, tasks: list[str]) -> tuple[Path, int]:
    """A fixture mirror, an lm-eval run and its report; returns (report, samples)."""
    mirror, out, report = root / "data", root / "run", root / "report.html"
    names = [DATASETS[t] for t in tasks]
    _run(
        [
            str(BIN / "mera-mm"),
            "fixtures",
            "--out",
            str(mirror),
            "--test",
            str(docs),
            "--datasets",
            *names,
        ],
        {},
    )
    env = {"MERA_DATA_DIR": str(mirror), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    _run(
        [
            str(BIN / "lm-eval"),
            "--model",
            "mera-baseline",
            "--include_path",
            str(REPO / "multimodal_tasks"),
            "--tasks",
            ",".join(tasks),
            "--log_samples",
            "--output_path",
            str(out),
        ],
        env,
    )
    _run(
        [
            str(BIN / "mera-mm"),
            "report",
            str(out),
            "-o",
            str(report),
            "--include_path",
            str(REPO / "multimodal_tasks"),
            "--max_samples_per_task",
            "100000",
        ],
        env,
    )
    samples = sum(len(p.read_text().splitlines()) for p in out.rglob("samples_*.jsonl"))
    return report, samples


def browse(page, report: Path) -> dict[str, float]:
    """Seconds to load the page, filter by the first task, and turn a page (medians of 3)."""

    def timed(action) -> float:
        start = time.perf_counter()
        action()
        page.wait_for_selector("article.sample")
        return time.perf_counter() - start

    loads, filters, pages = [], [], []
    for _ in range(3):
        loads.append(timed(lambda: page.goto(report.as_uri())))
        task = page.eval_on_selector("#filter-task", "s => s.options[1].value")
        filters.append(timed(lambda t=task: page.select_option("#filter-task", t)))
        page.select_option("#filter-task", "")
        pages.append(timed(lambda: page.click("#next")))
    return {k: sorted(v)[1] for k, v in (("load", loads), ("filter", filters), ("next", pages))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=25, help="test docs per config at 1x")
    parser.add_argument("--tasks", default="weird,ruenvaqa,commonvideoqa,ruhhh_image")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("chromium is missing (apt-get install chromium)")
    tasks = args.tasks.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        small, n_small = build(Path(tmp) / "x1", args.docs, tasks)
        large, n_large = build(Path(tmp) / "x10", args.docs * 10, tasks)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            t_small, t_large = browse(page, small), browse(page, large)
            browser.close()
        mb_small, mb_large = small.stat().st_size / 1e6, large.stat().st_size / 1e6
    print(f"samples: {n_small} -> {n_large}; page size {mb_small:.1f} -> {mb_large:.1f} MB")
    for key in ("load", "filter", "next"):
        ratio = t_large[key] / t_small[key]
        print(
            f"{key:>6}: {t_small[key] * 1000:7.1f} ms -> {t_large[key] * 1000:7.1f} ms, "
            f"ratio {ratio:.2f}x (target <= 2x for filter/next)"
        )


if __name__ == "__main__":
    main()
