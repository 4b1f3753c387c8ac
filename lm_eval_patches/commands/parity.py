"""``mera-mm parity``: one small sample set through two backends (or two batch sizes), greedy,
and where their answers differ.

Scores move between engines (HF vs vLLM, batch 1 vs batch 8, bf16 vs fp32); this command shows
on which docs. Both runs go through lm-eval in this process with the same tasks, limit, chat
template setting and greedy decoding (``do_sample=False``); the answers compared are each
sample's filtered response. Exit status: 0 when every answer agrees, 1 when some differ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DIFFERS_STATUS = 1
_SHOWN = 100  # characters of each answer printed per difference


def _run(args: argparse.Namespace, model: str, model_args: str, batch_size: str, tm: Any) -> dict:
    """``{(task, doc_id): (meta id, answer)}`` of one lm-eval run."""
    import lm_eval

    gen_kwargs = "do_sample=False"
    if args.max_gen_toks:
        gen_kwargs += f",max_gen_toks={args.max_gen_toks}"
    results = lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=args.tasks.split(","),
        limit=args.limit,
        batch_size=batch_size,
        device=args.device,
        apply_chat_template=args.apply_chat_template,
        gen_kwargs=gen_kwargs,
        log_samples=True,
        task_manager=tm,
    )
    answers = {}
    for task, samples in (results or {}).get("samples", {}).items():
        for sample in samples:
            meta = (sample.get("doc") or {}).get("meta") or {}
            reply = sample.get("filtered_resps") or sample.get("resps") or [""]
            while isinstance(reply, list):
                reply = reply[0] if reply else ""
            answers[(task, sample["doc_id"])] = (meta.get("id", sample["doc_id"]), str(reply))
    return answers


def compare(first: dict, second: dict) -> dict[str, Any]:
    """Per task: docs compared, docs that agree, and the differing docs with both answers."""
    report: dict[str, Any] = {}
    for key in sorted(set(first) | set(second), key=lambda k: (k[0], k[1])):
        task, doc_id = key
        entry = report.setdefault(task, {"compared": 0, "equal": 0, "differ": []})
        a, b = first.get(key), second.get(key)
        entry["compared"] += 1
        if a is not None and b is not None and a[1] == b[1]:
            entry["equal"] += 1
        else:
            meta_id = (a or b)[0]
            entry["differ"].append(
                {"doc_id": doc_id, "id": meta_id, "a": a and a[1], "b": b and b[1]}
            )
    return report


def run(args: argparse.Namespace) -> int:
    """Run both sides, print where they differ; 0 when all agree, 1 otherwise."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=args.include_path)
    other_model = args.other_model or args.model
    other_args = args.other_model_args if args.other_model_args is not None else args.model_args
    other_batch = args.other_batch_size or args.batch_size
    first = _run(args, args.model, args.model_args, args.batch_size, tm)
    second = _run(args, other_model, other_args, other_batch, tm)
    report = compare(first, second)
    label_a = f"A = {args.model} ({args.model_args or '-'}, batch {args.batch_size})"
    label_b = f"B = {other_model} ({other_args or '-'}, batch {other_batch})"
    print(label_a)
    print(label_b)
    differing = 0
    for task, entry in report.items():
        differing += len(entry["differ"])
        print(f"{task}: {entry['equal']}/{entry['compared']} answers equal")
        for diff in entry["differ"]:
            print(f"  doc {diff['doc_id']} (id {diff['id']}):")
            print(f"    A: {str(diff['a'])[:_SHOWN]!r}")
            print(f"    B: {str(diff['b'])[:_SHOWN]!r}")
    if args.output:
        Path(args.output).write_text(
            json.dumps({"a": label_a, "b": label_b, "tasks": report}, ensure_ascii=False, indent=1)
        )
    total = sum(e["compared"] for e in report.values())
    print(f"parity: {total - differing}/{total} answers equal")
    return DIFFERS_STATUS if differing else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``parity`` to the ``mera-mm`` subcommands."""
    p = sub.add_parser(
        "parity",
        help="run a small sample set through two backends or batch sizes (greedy) and "
        "show where the answers differ",
    )
    p.add_argument("--model", required=True, help="backend A (an lm-eval --model name)")
    p.add_argument("--model_args", default="", help="model args of A")
    p.add_argument("--batch_size", default="1", help="batch size of A")
    p.add_argument("--other_model", default=None, help="backend B (default: A's)")
    p.add_argument("--other_model_args", default=None, help="model args of B (default: A's)")
    p.add_argument("--other_batch_size", default=None, help="batch size of B (default: A's)")
    p.add_argument("--tasks", required=True, help="comma-separated MERA tasks")
    p.add_argument("--limit", type=int, default=5, help="docs per task (default 5)")
    p.add_argument("--include_path", default="./multimodal_tasks", help="the MERA task pack")
    p.add_argument("--device", default=None, help="device for both sides (e.g. cpu, cuda)")
    p.add_argument("--apply_chat_template", action="store_true")
    p.add_argument("--max_gen_toks", type=int, default=None, help="cap on generated tokens")
    p.add_argument("--output", default=None, help="also write the comparison as JSON here")
    p.set_defaults(func=run)
