"""``mera-mm report RUN_DIR... -o report.html``: one self-contained HTML page comparing runs."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from lm_eval_patches.runlogs import RunLogError, find_run


def build_report(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """Write the report; returns its path and the problems noted (media not shown, ...)."""
    from lm_eval_patches.report.chart import skills_svg
    from lm_eval_patches.report.collect import load_run, score_tables
    from lm_eval_patches.report.page import render_page
    from lm_eval_patches.report.samples import MediaResolver, build_samples
    from lm_eval_patches.rescore import load_pack
    from lm_eval_patches.skills import load_taxonomy

    pack = load_pack(args.include_path)
    taxonomy = load_taxonomy()
    labels = list(args.labels or [])
    runs = []
    for i, run_dir in enumerate(args.run_dirs):
        try:
            logs = find_run(run_dir)
        except RunLogError as exc:
            raise ValueError(str(exc)) from exc
        runs.append(load_run(logs, pack, labels[i] if i < len(labels) else None))
    seen: dict[str, int] = {}
    for run in runs:  # two runs of one model still need telling apart
        seen[run.label] = seen.get(run.label, 0) + 1
        if seen[run.label] > 1:
            run.label = f"{run.label} #{seen[run.label]}"
    tables = score_tables(runs, pack, taxonomy)
    skill_names = [s.name for s in taxonomy.skills()]
    index = {name: i for i, name in enumerate(skill_names)}

    def skills_of(task: str) -> list[int]:
        return [index[s] for s in taxonomy.dataset_skills(pack.tasks[task].dataset_path)]

    resolver = None if args.no_media else MediaResolver(pack)
    samples = build_samples(runs, pack, skills_of, args.max_samples_per_task, resolver)
    chart = skills_svg(tables.skills, [r.label for r in runs])
    media = resolver.media if resolver else {}
    problems = resolver.problems if resolver else []
    page = render_page(runs, tables, chart, skill_names, samples, media, problems)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out, problems


def run(args: argparse.Namespace) -> int:
    """Build the page and say where it is; returns the exit status."""
    for module in ("matplotlib", "av"):
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"the report needs {module}: pip install 'mera-multimodal[report]'")
    if not Path(args.include_path).is_dir():
        raise ValueError(f"--include_path {args.include_path} is not a folder of task YAMLs")
    out, problems = build_report(args)
    size = out.stat().st_size / 1e6
    print(f"wrote {out.resolve()} ({size:.1f} MB); open it in a browser (works offline)")
    for problem in problems[:10]:
        print(f"  note: {problem}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``report`` to the ``mera-mm`` subcommands."""
    rp = sub.add_parser("report", help="one self-contained HTML page comparing runs")
    rp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="lm-eval --output_path folder")
    rp.add_argument("-o", "--output", default="report.html", help="the HTML file to write")
    rp.add_argument("--include_path", default="multimodal_tasks", help="the task pack folder")
    rp.add_argument("--labels", nargs="*", default=None, help="a name per run, in order")
    rp.add_argument(
        "--max_samples_per_task", type=int, default=200, help="samples per task in the browser"
    )
    rp.add_argument("--no_media", action="store_true", help="leave media out (smaller page)")
    rp.set_defaults(func=run)
