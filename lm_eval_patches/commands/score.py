"""``mera-mm score RUN_DIR...``: recompute a run's metrics (and the judge score) from its logs.

Writes ``scores_<date>.json`` beside the run's ``results_<date>.json``: the same shape as
lm-eval's results (``results``, ``groups``, ``configs`` ...), re-scored with the task pack's
current code, plus a ``mera_score`` block (what was compared, the judge and its counts).
Exit status 0 when every score could be computed, 1 when some judge verdicts failed (they are
counted and left out; the file is written all the same), 2 on bad input.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

from lm_eval_patches.runlogs import RunLogError, RunLogs, find_run


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def compare(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[str]:
    """Lines naming each metric whose re-scored value differs from the run's own."""
    lines = []
    for task, entry in sorted(new.items()):
        before = old.get(task, {})
        for key, value in entry.items():
            if "," not in key or key not in before or "_count," in key:
                continue
            if not _same(before[key], value):
                lines.append(f"  {task} {key}: run {before[key]} -> re-scored {value}")
    return lines


def score_run(run: RunLogs, args: argparse.Namespace, pack: Any) -> tuple[Path, int]:
    """Re-score one run, write its scores file; returns (path, number of failed verdicts)."""
    from lm_eval_patches.rescore import group_results, rescore_run

    scored_results, scored = rescore_run(run, pack)
    results = scored_results["results"]
    block: dict[str, Any] = {"source": run.results_path.name, "include_path": args.include_path}
    extra: list[str] = []
    failed = 0
    if args.judge_url:
        from lm_eval_patches.judge import JudgeClient, VerdictCache, default_cache_path
        from lm_eval_patches.judge_scores import GROUP_JS, JS, judge_task

        client = JudgeClient(
            args.judge_url,
            args.judge_model,
            key_env=args.judge_api_key_env,
            max_retries=args.judge_max_retries,
            timeout_s=args.judge_timeout,
        )
        cache = VerdictCache(args.judge_cache or default_cache_path())
        per_task, per_doc = {}, {}
        try:
            for task, scores in scored.items():
                values, counts, verdicts = judge_task(scores, client, cache, args.judge_concurrency)
                results[task].update(values)
                if values:
                    per_task[task] = counts.as_dict()
                    # Each doc's verdict ("failed" where the judge gave none), for the report.
                    per_doc[task] = {
                        str(record["doc_id"]): v
                        for record, v in zip(scores.docs, verdicts, strict=True)
                        if v is not None
                    }
                failed += counts.failed
        finally:
            cache.close()
        block["judge"] = {
            **client.identity(),
            "tasks": per_task,
            "failed": failed,
            "verdicts": per_doc,
        }
        extra = [JS]
        for task in results:
            run.results.setdefault("higher_is_better", {}).setdefault(task, {})
            if f"{JS},none" in results[task] or any(k.startswith(JS) for k in results[task]):
                run.results["higher_is_better"][task].update({JS: True, GROUP_JS: True})
    wanted = set(run.results.get("group_subtasks", {}))
    groups = {g: e for g, e in group_results(pack, results, extra).items() if g in wanted}
    # Groups without an aggregation appear in lm-eval's results with their names only.
    plain = {g: {"alias": g, "name": g} for g in wanted if g not in groups}
    changed = compare(run.results.get("results", {}), results)
    block["changed_from_run"] = changed
    out = dict(run.results)
    out["results"] = {**results, **groups, **plain}
    if groups:
        out["groups"] = groups
    out["mera_score"] = block
    path = run.folder / f"scores_{run.date}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print(f"{run.results_path.parent}: {len(results)} task(s) re-scored -> {path}")
    if changed:
        print("values that differ from the run's own (the scoring code changed since):")
        print("\n".join(changed))
    else:
        print("every metric equals the run's own")
    if args.judge_url:
        print(f"judge {args.judge_model}: {failed} verdict(s) failed (left out of judge_score)")
    return path, failed


def run(args: argparse.Namespace) -> int:
    """Score every RUN_DIR; returns the exit status."""
    if args.judge_url and not args.judge_model:
        raise ValueError("--judge_url needs --judge_model (the judge's model name)")
    if args.judge_url and importlib.util.find_spec("openai") is None:
        raise ValueError("the judge needs the openai package: pip install 'mera-multimodal[judge]'")
    from lm_eval_patches.rescore import load_pack

    if not Path(args.include_path).is_dir():
        raise ValueError(f"--include_path {args.include_path} is not a folder of task YAMLs")
    pack = load_pack(args.include_path)
    failed = 0
    for run_dir in args.run_dirs:
        try:
            logs = find_run(run_dir)
        except RunLogError as exc:
            raise ValueError(str(exc)) from exc
        failed += score_run(logs, args, pack)[1]
    if failed:
        print(
            f"{failed} judge verdict(s) failed; see mera_score.judge in the file", file=sys.stderr
        )
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``score`` to the ``mera-mm`` subcommands."""
    sc = sub.add_parser(
        "score",
        help="recompute a run's metrics from its samples logs (no model), optionally a judge score",
    )
    sc.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="lm-eval --output_path folder")
    sc.add_argument("--include_path", default="multimodal_tasks", help="the task pack folder")
    sc.add_argument("--judge_url", default=None, help="OpenAI-compatible API base, e.g. .../v1")
    sc.add_argument("--judge_model", default=None, help="the judge's model name at that endpoint")
    sc.add_argument(
        "--judge_api_key_env",
        default="MERA_JUDGE_API_KEY",
        help="environment variable holding the judge's API key (read when scoring)",
    )
    sc.add_argument("--judge_cache", default=None, help="SQLite file of cached verdicts")
    sc.add_argument("--judge_concurrency", type=int, default=8, help="requests in flight")
    sc.add_argument("--judge_max_retries", type=int, default=3, help="retries per request")
    sc.add_argument("--judge_timeout", type=float, default=60.0, help="seconds per request")
    sc.set_defaults(func=run)
