"""``run_status.json``: what a run did per task, and what it takes to reproduce it.

Written beside lm-eval's ``results_<date>.json`` (same folder) each time lm-eval saves results.
``tasks``: per task, the requests asked (``requested``), answered (``done``), answered from the
``--use_cache`` file (``from_cache``), computed, failed (with counts per reason) and ``missing``
(asked but without any answer in the samples). ``reproducibility``: the resolved command and
model arguments with secrets masked, media settings (LOAD_* form, resizing, frames, pass mode,
decoders and their versions), the chat template hash, library versions and each dataset's
source (local mirror or hub) with its fingerprints.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from lm_eval_patches import failures
from lm_eval_patches.cache.keys import is_secret, mask_secrets, parse_model_args

RUN_STATUS_FILE = "run_status.json"
STATUS_FORMAT = 1

LIBRARIES = (
    "mera-multimodal",
    "lm_eval",
    "torch",
    "transformers",
    "datasets",
    "numpy",
    "pillow",
    "av",
    "decord",
    "torchcodec",
    "soundfile",
    "soxr",
    "aiohttp",
)
ENV_SETTINGS = (
    "LOAD_OBJECT",
    "LOAD_BYTES",
    "LOAD_BASE64",
    "LOAD_FILES",
    "HARNESS_RESIZE_IMAGES",
    "INPUT_IMAGE_WIDTH",
    "INPUT_IMAGE_HEIGHT",
    "INPUT_IMAGE_MAX_SIDE",
    "MERA_DATA_DIR",
    "LM_EVAL_MEDIA_DIR",
    "HARNESS_TENSOR_PARALLEL",
)


def results_folder(tracker: Any) -> Path:
    """The folder where lm-eval put the results file (its own rule, see EvaluationTracker)."""
    path = Path(tracker.output_path)
    if path.suffix == ".json":
        return path.parent
    return path / str(tracker.general_config_tracker.model_name_sanitized)


# The status last written by this process (the CLI's exit status reads its missing counts).
LAST_STATUS: dict[str, Any] | None = None


def write_run_status(tracker: Any, results: dict, samples: dict | None, run: Any) -> Path:
    """Write ``run_status.json`` for the results lm-eval just saved; returns its path."""
    global LAST_STATUS
    folder = results_folder(tracker)
    status = build_run_status(results, samples, run)
    LAST_STATUS = status
    status["results_file"] = f"results_{tracker.date_id}.json"
    path = folder / RUN_STATUS_FILE
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(status, indent=2, ensure_ascii=False, default=str), "utf-8")
    tmp.replace(path)
    return path


def build_run_status(results: dict, samples: dict | None, run: Any) -> dict[str, Any]:
    """The run status document (see the module docstring) from lm-eval's results."""
    cache = run.caches[0] if run is not None and run.caches else None
    counts = cache.task_counts() if cache is not None else {}
    start = getattr(run, "failures_start", 0) if run is not None else 0
    tasks = {}
    for task, n in sorted((results.get("n-samples") or {}).items()):
        requested = int(n.get("effective", 0))
        reasons = _failure_reasons(task, samples, start)
        failed = sum(reasons.values())
        answered = len(samples[task]) if samples and task in samples else requested
        missing = max(requested - answered, 0)
        cached = counts.get(task, {})
        tasks[task] = {
            "requested": requested,
            "done": max(requested - failed - missing, 0),
            "from_cache": cached.get("from_cache", 0),
            "computed": cached.get("computed"),
            "failed": failed,
            "failed_by_reason": dict(reasons.most_common()),
            "missing": missing,
        }
    totals = {
        key: sum(t[key] or 0 for t in tasks.values())
        for key in ("requested", "done", "from_cache", "failed", "missing")
    }
    complete = totals["failed"] == 0 and totals["missing"] == 0
    return {
        "format": STATUS_FORMAT,
        "status": "complete" if complete else ("incomplete" if totals["missing"] else "failed"),
        "totals": totals,
        "tasks": tasks,
        "cache": (
            {"file": str(cache.path), "model_id": cache.model_id, "identity": cache.identity}
            if cache is not None
            else None
        ),
        "reproducibility": reproducibility(results, run),
    }


def _failure_reasons(task: str, samples: dict | None, start: int) -> Counter:
    """Failure reasons of ``task``: from the samples log when failure answers carry them
    (every rank's samples), else from this process's failure records."""
    is_failure = getattr(failures, "is_failure", None)
    reason_of = getattr(failures, "failure_reason", None)
    if samples and task in samples and is_failure is not None and reason_of is not None:
        found: Counter = Counter()
        for sample in samples[task]:
            answer = _first_response(sample)
            if is_failure(answer):
                found[reason_of(answer) or "unknown"] += 1
        return found
    return Counter(f.reason for f in failures.FAILURES.items[start:] if f.task == task)


def _first_response(sample: dict) -> Any:
    resps = sample.get("resps") or []
    first = resps[0] if resps else None
    return first[0] if isinstance(first, list) and first else first


def masked_command(argv: list[str]) -> list[str]:
    """``argv`` with credential values masked: ``--model_args ...,api_key=X`` and JSON forms."""
    out = []
    for arg in argv:
        if arg.lstrip().startswith("{"):
            try:
                arg = json.dumps(mask_secrets(json.loads(arg)), ensure_ascii=False)
            except (ValueError, AttributeError):
                arg = "***"  # unparseable JSON may still hold a key
        elif "=" in arg:
            parts = []
            for part in arg.split(","):
                name, sep, _ = part.partition("=")
                parts.append(f"{name}=***" if sep and is_secret(name) else part)
            arg = ",".join(parts)
        out.append(arg)
    return out


def reproducibility(results: dict, run: Any) -> dict[str, Any]:
    """What it takes to run this again and get the same requests."""
    from lm_eval_patches.media.forms import load_mode, resize_from_env
    from lm_eval_patches.settings import RUN_OPTIONS

    try:
        mode = load_mode()
    except ValueError as exc:
        mode = f"invalid: {exc}"
    try:
        args = mask_secrets(parse_model_args(run.model_args)) if run is not None else {}
    except Exception:  # noqa: BLE001 - a record must not fail the run
        args = {"unparsed": "***"}
    config = results.get("config") or {}
    return {
        "command": masked_command(list(sys.argv)),
        "cwd": os.getcwd(),
        "backend": run.backend if run is not None and isinstance(run.backend, str) else None,
        "model_args": args,
        "settings": dict(run.settings) if run is not None else {},
        "environment": {
            k: os.environ[k] for k in ENV_SETTINGS if k in os.environ and not is_secret(k)
        },
        "media": {
            "load_mode": mode,
            "backend_resolves_media": RUN_OPTIONS.backend_resolves_media,
            "resize_from_env": resize_from_env(),
            "replace_videos_with_images_amount": RUN_OPTIONS.replace_videos_with_images_amount,
            "pass_multimodal_args_to_chat_history": (
                RUN_OPTIONS.pass_multimodal_args_to_chat_history
            ),
            "video_decoders": _video_decoders(),
            "audio_decoding": {"soundfile": _version("soundfile"), "resampler": "soxr"},
        },
        "chat_template_sha": results.get("chat_template_sha"),
        "system_instruction_sha": results.get("system_instruction_sha"),
        "model_info": {k: config[k] for k in ("model", "batch_size", "device") if k in config},
        "libraries": {name: _version(name) for name in LIBRARIES},
        "python": sys.version.split()[0],
        "datasets": run.datasets if run is not None else {},
    }


def _video_decoders() -> dict[str, Any]:
    from lm_eval_patches.media.video import AUTO_ORDER

    return {
        "order": list(AUTO_ORDER),
        "versions": {name: _version("av" if name == "pyav" else name) for name in AUTO_ORDER},
    }


def dataset_sources(task_dict: Any) -> dict[str, Any]:
    """Per task of lm-eval's ``task_dict``: dataset path and config, where it was read from
    (the local mirror or the hub) and the fingerprint of each split."""
    from lm_eval_patches.tasks.data import mirror_path

    out = {}
    for task in _tasks_in(task_dict):
        path = getattr(task, "DATASET_PATH", None)
        local = mirror_path(path) if path else None
        dataset = getattr(task, "dataset", None) or {}
        out[task.config.task] = {
            "path": path,
            "name": getattr(task, "DATASET_NAME", None),
            "source": f"mirror:{local}" if local else "hub",
            "fingerprints": {
                split: getattr(ds, "_fingerprint", None) for split, ds in dataset.items()
            },
        }
    return dict(sorted(out.items()))


def _tasks_in(tree: Any) -> list[Any]:
    if hasattr(tree, "config") and hasattr(tree, "dataset"):
        return [tree]
    if isinstance(tree, dict):
        return [task for value in tree.values() for task in _tasks_in(value)]
    return []


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
