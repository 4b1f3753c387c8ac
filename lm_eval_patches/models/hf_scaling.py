"""Scaling the local HF backends out over processes, on lm-eval's own machinery.

- Tensor parallel: lm-eval's ``tp_plan="auto"`` (transformers shards the weights over the
  processes of a ``torchrun``/``accelerate launch``). The original project's switch
  ``HARNESS_TENSOR_PARALLEL=1`` means the same thing here: it adds ``tp_plan="auto"`` when the
  model args do not name a plan. Read when a backend is built, never at import.
- Data parallel: under a multi-process launch without a ``tp_plan``, each process takes its share
  of the docs and rank 0 gathers and writes the outputs (lm-eval's evaluator does both). Upstream
  ``HFLM`` only turns this on when it sees more than one GPU; :func:`adopt_data_parallel` turns it
  on for any multi-process launch (CPU processes, one GPU per node).
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

TENSOR_PARALLEL_SWITCH = "HARNESS_TENSOR_PARALLEL"


def tensor_parallel_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with ``tp_plan="auto"`` added when ``HARNESS_TENSOR_PARALLEL=1`` is set and
    no plan was given (the original's switch; 1 turns it on, it is not a process count)."""
    if os.environ.get(TENSOR_PARALLEL_SWITCH, "").strip() == "1" and not kwargs.get("tp_plan"):
        log.info("%s=1: using tp_plan='auto'", TENSOR_PARALLEL_SWITCH)
        return {**kwargs, "tp_plan": "auto"}
    return kwargs


def adopt_data_parallel(lm: Any, tp_plan: Any = None) -> None:
    """Split docs over the processes of a multi-process launch that upstream left at one.

    ``lm`` is an ``HFLM`` after its ``__init__``: upstream keeps its ``Accelerator`` when there
    is more than one process but sets rank/world size only when it counts more than one GPU.
    """
    accelerator = getattr(lm, "accelerator", None)
    if tp_plan or accelerator is None or accelerator.num_processes <= 1:
        return
    if getattr(lm, "_world_size", 1) == 1:
        lm._rank = accelerator.process_index
        lm._world_size = accelerator.num_processes
        log.info("data parallel: process %d of %d", lm._rank, lm._world_size)
