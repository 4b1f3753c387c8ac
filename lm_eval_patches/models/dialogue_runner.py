"""The dialogue runner: asks each ruTiE dialogue's questions in order, with the model's answers.

lm-eval builds all requests, then hands every ``generate_until`` request of the run to the
backend's ``generate_until`` in one call. :func:`install` (run by the start-up hook once
``lm_eval.evaluator`` is imported) wraps ``lm_eval.evaluator.evaluate`` so that, for each run,
the model object's ``generate_until`` is wrapped by :func:`dialogue_aware`. Any backend (ours,
lm-eval's, a ``CachingLM`` around either) thus picks it up without code of its own.

The wrapper passes requests without a ``mera_dialogue`` slot straight through, in one call.
Dialogue requests go in steps: step ``k`` rebuilds the ``k``-th question of every dialogue
with its history (``DialogueTask.rebuild``) and sends those questions in one batch, so the
dialogues run concurrently where the backend can (an API backend's ``num_concurrent``) and in
order otherwise, and no question is sent before the earlier questions of its dialogue are
answered. Each answer is read with the project's extractor (``DialogueTask.shown_answer``) for
the questions after it. A request's arguments hold its full history when it is sent, so a
cache keyed on the arguments (lm-eval's ``--use_cache``) keys on the history it was asked with;
``instance.mera_dialogue.history_key`` names that history on its own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

MARK = "mera_dialogue_runner"


def run_dialogues(generate: Callable[[list], list], requests: list) -> list:
    """Answers of ``requests`` in their order; dialogue requests asked step by step."""
    slots = [getattr(r, "mera_dialogue", None) for r in requests]
    if not any(slots):
        return generate(requests)
    answers: list[Any] = [None] * len(requests)
    plain = [i for i, s in enumerate(slots) if s is None]
    if plain:
        for i, reply in zip(plain, generate([requests[i] for i in plain]), strict=True):
            answers[i] = reply
    queues: dict[tuple, list[int]] = {}
    for i, slot in enumerate(slots):
        if slot is not None:
            queues.setdefault(slot.key, []).append(i)
    for queue in queues.values():
        queue.sort(key=lambda i: slots[i].position)
    shown: dict[tuple, dict[int, str]] = {key: {} for key in queues}
    steps = max(len(q) for q in queues.values())
    log.info("dialogue runner: %d dialogue(s), %d step(s)", len(queues), steps)
    for step in range(steps):
        batch = []
        for i in (q[step] for q in queues.values() if step < len(q)):
            if _rebuilt(slots[i], requests[i], shown[slots[i].key], answers, i):
                batch.append(i)
        replies = generate([requests[i] for i in batch]) if batch else []
        for i, reply in zip(batch, replies, strict=True):
            answers[i] = reply
        for i in (q[step] for q in queues.values() if step < len(q)):
            slot = slots[i]
            slot.answer = slot.task.shown_answer(requests[i].doc, answers[i])
            shown[slot.key][slot.position] = slot.answer
    return answers


def _rebuilt(slot: Any, request: Any, shown: dict[int, str], answers: list, i: int) -> bool:
    """Rebuild one request with its history; on any error its answer is a failure answer (the
    dialogue goes on, showing no answer for it) and it is not sent."""
    from lm_eval_patches.failures import FAILURES

    try:
        slot.task.rebuild(request, shown)
    except Exception as err:  # one broken question must not sink the run
        label = slot.task.doc_label(request.doc)
        answers[i] = FAILURES.record(slot.task.config.task, label, f"dialogue history: {err}")
        return False
    return True


def dialogue_aware(generate: Callable[..., list]) -> Callable[..., list]:
    """``generate`` (a bound ``generate_until``) with the dialogue runner in front."""
    if getattr(generate, MARK, False):
        return generate

    @functools.wraps(generate)
    def wrapper(requests: list, *args: Any, **kwargs: Any) -> list:
        return run_dialogues(lambda batch: generate(batch, *args, **kwargs), requests)

    setattr(wrapper, MARK, True)
    return wrapper


def install(module: ModuleType) -> None:
    """Wrap ``module.evaluate`` (lm_eval.evaluator) once so every run gets the runner."""
    original = module.evaluate
    if getattr(original, MARK, False):
        return

    @functools.wraps(original)
    def evaluate(lm: Any, *args: Any, **kwargs: Any) -> Any:
        lm.generate_until = dialogue_aware(lm.generate_until)
        return original(lm, *args, **kwargs)

    setattr(evaluate, MARK, True)
    module.evaluate = evaluate
