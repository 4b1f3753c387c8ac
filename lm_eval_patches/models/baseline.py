"""``mera-baseline``: a deterministic, seeded chance-level model that answers in task format.

Choice tasks get a random option letter (among the doc's non-empty options); free-form tasks
get the most common gold answer of the task's few-shot split. The draw depends only on the
seed, the task and the doc, so runs are reproducible and independent of order and batching.
It never decodes media: it is the offline demo model and the chance row of every table.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import Any

from lm_eval.api.model import LM

from lm_eval_patches.failures import FAILURES, build_failure_answer, failed_at_build


class MeraBaselineLM(LM):
    """Chance-level reference model for MERA tasks."""

    MULTIMODAL = True

    def __init__(self, seed: int | str = 1234, model: str = "mera-baseline", **_: Any) -> None:
        super().__init__()
        self.seed = int(seed)
        # ``model=`` names the run: lm-eval derives its output folder from it.
        self.model_name = model
        self._majority: dict[str, str] = {}

    def _rng(self, task: str, doc_key: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}|{task}|{doc_key}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _majority_answer(self, task: Any) -> str:
        name = task.config.task
        if name not in self._majority:
            answers = Counter(task.shot_answers())
            # Ties break by the answer text so the choice never depends on dataset order.
            best = sorted(answers.items(), key=lambda kv: (-kv[1], kv[0]))
            self._majority[name] = best[0][0] if best else ""
        return self._majority[name]

    def answer(self, request: Any) -> str:
        """The baseline's answer for one lm-eval request."""
        from lm_eval_patches.tasks.task import ACTIVE_TASKS

        task_name = request.task_name
        doc = request.doc or {}
        task = ACTIVE_TASKS.get(task_name)
        if task is None:
            return FAILURES.record(
                task_name, str(request.doc_id), "mera-baseline only answers MERA tasks"
            )
        if failed_at_build(request.args):
            return build_failure_answer(request.args)
        doc_key = str((doc.get("meta") or {}).get("id", request.doc_id))
        options = task.answer_options(doc)
        if task.answer_kind == "letter" or (task.answer_kind == "auto" and options):
            return self._rng(task_name, doc_key).choice(options or ["A", "B"])
        return self._majority_answer(task)

    @property
    def tokenizer_name(self) -> str:
        return "mera-baseline"

    def apply_chat_template(
        self, chat_history: list[dict], add_generation_prompt: bool = True
    ) -> str:
        """A plain "role: text" rendering; the baseline reads no prompt, but runs that pass
        --apply_chat_template (as the original's commands do) must work with it."""
        lines = [f"{turn['role']}: {turn['content']}" for turn in chat_history]
        return "\n".join(lines + (["assistant:"] if add_generation_prompt else []))

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        return [self.answer(request) for request in requests]

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
        raise NotImplementedError("mera-baseline only generates (MERA tasks are generative)")

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list:
        raise NotImplementedError("mera-baseline only generates (MERA tasks are generative)")
