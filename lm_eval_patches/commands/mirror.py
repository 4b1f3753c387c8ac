"""``mera-mm mirror``: download MERA datasets into a local mirror for offline machines."""

from __future__ import annotations

import argparse
import os


def run(args: argparse.Namespace) -> int:
    """Mirror the datasets; 0 when all were fetched and verified, 1 otherwise."""
    from pathlib import Path

    from lm_eval_patches.mirror import mirror_datasets
    from lm_eval_patches.task_pack import dataset_paths

    if args.datasets:
        repo_ids = [d if "/" in d else f"MERA-evaluation/{d}" for d in args.datasets]
    else:
        names = [n for part in args.tasks or [] for n in part.split(",") if n]
        repo_ids = dataset_paths(args.include_path, names or None)
    token = os.environ.get("HF_TOKEN") or None
    endpoint = args.endpoint or os.environ.get("HF_ENDPOINT") or None
    results = mirror_datasets(
        repo_ids,
        args.out,
        endpoint=endpoint,
        token=token,
        revision=args.revision,
        max_workers=args.max_workers,
    )
    for result in results:
        if result.ok:
            print(
                f"ok      {result.repo_id}@{(result.commit or '')[:10]}: {result.files} files, "
                f"{result.bytes / 1e6:.1f} MB verified"
            )
        else:
            print(f"FAILED  {result.error}")
    failed = sum(not r.ok for r in results)
    root = Path(args.out).resolve()
    print(f"{len(results) - failed}/{len(results)} dataset(s) mirrored under {root}")
    if not failed:
        print(f"use them offline with: export MERA_DATA_DIR={root}")
    return 1 if failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``mirror`` to the ``mera-mm`` subcommands."""
    mi = sub.add_parser(
        "mirror",
        help="download MERA datasets into a local mirror (MERA_DATA_DIR) for offline runs",
        description="Needs network; HF_TOKEN for private sets. Resumable: run it again after "
        "an interruption and only what is missing is fetched. Every file is verified.",
    )
    mi.add_argument("--out", required=True, help="mirror folder (use it as MERA_DATA_DIR)")
    mi.add_argument(
        "--tasks",
        nargs="*",
        default=None,
        help="task or group names (default: every dataset of the task pack)",
    )
    mi.add_argument(
        "--datasets", nargs="*", default=None, help="hub ids instead, e.g. MERA-evaluation/WEIRD"
    )
    mi.add_argument("--include_path", default="multimodal_tasks", help="the task pack")
    mi.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    mi.add_argument("--endpoint", default=None, help="hub URL (default: HF_ENDPOINT or the hub)")
    mi.add_argument("--max-workers", type=int, default=4, help="parallel file downloads")
    mi.set_defaults(func=run)
