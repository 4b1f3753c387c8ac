"""``mera-mm cache info|prune PATH``: inspect and clean a ``--use_cache`` file."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any


def _open(path_arg: str) -> Any:
    from lm_eval_patches.cache.store import AnswerStore, cache_file_for

    path = Path(path_arg)
    if not path.is_file():
        path = cache_file_for(path_arg)  # the --use_cache PATH as given to lm-eval
    if not path.is_file():
        raise ValueError(f"no cache file at {path_arg} (nor {cache_file_for(path_arg)})")
    return AnswerStore(path)


def summary(store: Any) -> dict[str, Any]:
    """What a cache file holds: answers per model identity, task and request type."""
    entries = list(store.entries())
    models = store.models()
    per_model = Counter(e.model for e in entries)
    return {
        "file": str(store.path),
        "bytes": store.path.stat().st_size,
        "answers": len(entries),
        "invalid": sum(not e.valid for e in entries),
        "models": [
            {"id": model, "answers": count, **models.get(model, {"backend": "?"})}
            for model, count in per_model.most_common()
        ],
        "tasks": dict(Counter(e.task or "?" for e in entries).most_common()),
        "request_types": dict(Counter(e.request_type for e in entries).most_common()),
    }


def _print_summary(info: dict[str, Any]) -> None:
    print(f"cache file {info['file']} ({info['bytes'] / 1024:.1f} KiB)")
    print(f"answers: {info['answers']} (not plain JSON, ignored: {info['invalid']})")
    print("models:")
    for model in info["models"]:
        args = ",".join(f"{k}={v}" for k, v in sorted(model.get("model_args", {}).items()))
        print(f"  {model['id']}  {model['answers']:>6}  {model['backend']} {args}".rstrip())
    print("tasks:")
    for task, count in info["tasks"].items():
        print(f"  {task}: {count}")
    print("request types: " + ", ".join(f"{k} {v}" for k, v in info["request_types"].items()))


def run_info(args: argparse.Namespace) -> int:
    """Print what the cache file holds."""
    store = _open(args.path)
    try:
        info = summary(store)
    finally:
        store.close()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        _print_summary(info)
    return 0


def run_prune(args: argparse.Namespace) -> int:
    """Delete the entries that match every given criterion, then compact the file."""
    if not (args.model or args.task or args.invalid or args.older_than is not None):
        raise ValueError("say what to prune: --model, --task, --invalid and/or --older-than")
    store = _open(args.path)
    try:
        cutoff = time.time() - args.older_than * 86400 if args.older_than is not None else None
        doomed = [
            e.key
            for e in store.entries()
            if (not args.model or e.model in args.model)
            and (not args.task or e.task in args.task)
            and (not args.invalid or not e.valid)
            and (cutoff is None or e.created < cutoff)
        ]
        if args.dry_run:
            print(f"would delete {len(doomed)} answer(s) from {store.path}")
            return 0
        deleted = store.delete(doomed)
        store.compact()
        print(f"deleted {deleted} answer(s) from {store.path}; {store.count()} left")
    finally:
        store.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``cache info`` and ``cache prune`` to the ``mera-mm`` subcommands."""
    cache = sub.add_parser("cache", help="inspect or clean a --use_cache file")
    actions = cache.add_subparsers(dest="action", required=True)
    info = actions.add_parser("info", help="answers per model, task and request type")
    info.add_argument("path", help="the cache file, or the PATH given to --use_cache")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=run_info)
    prune = actions.add_parser(
        "prune", help="delete answers matching all the given criteria, then compact"
    )
    prune.add_argument("path", help="the cache file, or the PATH given to --use_cache")
    prune.add_argument("--model", action="append", help="model id (see `cache info`)")
    prune.add_argument("--task", action="append", help="task name")
    prune.add_argument(
        "--invalid", action="store_true", help="entries that are not plain JSON (never read)"
    )
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="entries older than")
    prune.add_argument("--dry-run", action="store_true", help="only count what would go")
    prune.set_defaults(func=run_prune)
