"""``MeraCachingLM``: what ``--use_cache PATH`` wraps every backend in (ours and upstream's).

It has the interface of lm-eval's ``CachingLM`` (the evaluator builds it in the same place, see
:mod:`lm_eval_patches.cache.install`) with these differences:

- keys from :mod:`lm_eval_patches.cache.keys` (media by content hash in any form, model identity);
- values in :class:`~lm_eval_patches.cache.store.AnswerStore` (JSON in SQLite, never pickle), one
  file shared by all ranks;
- each answer is stored the moment the backend produces it: the backend's
  ``cache_hook.add_partial`` calls are matched to the pending request they answer (by context and
  generation settings, which is exact unless two pending requests share their text and differ
  only by media; those are stored when the batch returns, or at once by backends that report
  answers per request through :func:`answers_in_order` or ``cache_hook.add_answer``);
- a failed answer (the project's failure records) is never stored, so a rerun redoes exactly the
  failed requests; sampled generations (``do_sample=True``) are not cached, as upstream.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from lm_eval_patches import failures
from lm_eval_patches.cache.keys import (
    UncacheableRequest,
    identity_hash,
    model_identity,
    partial_signature,
    request_key,
)
from lm_eval_patches.cache.store import AnswerStore, cache_file_for
from lm_eval_patches.models.local_requests import doc_label

# A child of lm-eval's logger: these lines appear in the run's log, at its verbosity.
log = logging.getLogger("lm_eval.mera_cache")

REQUEST_TYPES = ("generate_until", "loglikelihood", "loglikelihood_rolling")


@dataclass
class TaskCounts:
    """Per-task request counts of one run through the cache."""

    from_cache: int = 0  # answered from the file, not sent to the model
    computed: int = 0  # answered by the model and stored
    failed: int = 0  # answered with a failure answer (never stored)
    not_cached: int = 0  # bypassed the cache: sampled generation or no content hash

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Pending:
    """Requests of one backend call that still wait for their answer."""

    def __init__(self, items: list[tuple[int, Any, str | None]]) -> None:
        self.by_instance = {id(req): (index, key) for index, req, key in items if key}
        self.requests = {index: req for index, req, _ in items}
        self.by_signature: dict[str, deque[tuple[int, str]]] = defaultdict(deque)
        for index, req, key in items:
            sig = partial_signature(req.args) if key else None
            if sig is not None:
                self.by_signature[sig].append((index, key))
        self.stored: dict[int, Any] = {}

    def match_partial(self, req_args: Any) -> tuple[int, str] | None:
        """The request that an ``add_partial(args, answer)`` call answers, when certain."""
        queue = self.by_signature.get(partial_signature(req_args) or "")
        if not queue:
            return None
        if any(key != queue[0][1] for _, key in queue):
            return None  # same text, different media: left for the end of the call
        return queue.popleft()

    def take(self, index: int, key: str) -> None:
        """Forget a request answered through an exact report (keeps the queues consistent)."""
        queue = self.by_signature.get(partial_signature(self.requests[index].args) or "")
        if queue is not None and (index, key) in queue:
            queue.remove((index, key))


class MeraCacheHook:
    """The ``cache_hook`` given to the backend: lm-eval's interface plus ``add_answer``."""

    def __init__(self, owner: MeraCachingLM) -> None:
        self.owner = owner

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        """lm-eval's per-answer report: ``req`` is (context, generation settings)."""
        try:
            self.owner.store_partial(attr, req, res)
        except Exception as exc:  # noqa: BLE001 - the cache must never stop a request
            log.warning("could not store an answer in the cache: %s", exc)

    def add_answer(self, attr: str, instance: Any, res: Any) -> None:
        """Exact per-answer report from backends that know the request instance."""
        try:
            self.owner.store_answer(attr, instance, res)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not store an answer in the cache: %s", exc)


class MeraCachingLM:
    """Wraps a backend so answers come from, and go to, the ``--use_cache`` file.

    ``cache_db`` is what lm-eval's evaluator passes (``PATH_rank<N>.db``); the rank suffix is
    dropped, since all ranks share one file (:func:`~lm_eval_patches.cache.store.cache_file_for`).
    """

    def __init__(
        self,
        lm: Any,
        cache_db: str,
        backend: Any = None,
        model_args: Any = None,
    ) -> None:
        from lm_eval_patches.cache import install

        run = install.CURRENT_RUN
        if backend is None and run is not None:
            backend, model_args = run.backend, run.model_args
        self.lm = lm
        self.path = cache_file_for(install.strip_rank_suffix(cache_db))
        self.store = AnswerStore(self.path)
        self.identity = model_identity(backend if backend is not None else lm, model_args, lm)
        self.model_id = identity_hash(self.identity)
        self.store.register_model(self.model_id, self.identity)
        self.counts: dict[str, TaskCounts] = defaultdict(TaskCounts)
        self._pending: _Pending | None = None
        self._attr = ""
        self._failures_seen = 0
        self._failed_docs: set[tuple[str, str]] = set()
        self._warned: set[str] = set()
        lm.set_cache_hook(MeraCacheHook(self))
        if run is not None:
            run.caches.append(self)
        log.info(
            "request cache: %s, one file for all ranks (not the per-rank file named above); "
            "model id %s = %s",
            self.path,
            self.model_id,
            self.identity,
        )

    def __getattr__(self, attr: str) -> Any:
        if attr == "lm":  # not set yet (during unpickling or a failed __init__)
            raise AttributeError(attr)
        return getattr(self.lm, attr)

    def get_cache_hook(self) -> MeraCacheHook:
        """A hook for another LM to report answers into this cache."""
        return MeraCacheHook(self)

    # -- lm-eval's request methods ------------------------------------------------------------
    def generate_until(self, requests: list, *args: Any, **kwargs: Any) -> list:
        return self._answer("generate_until", requests, *args, **kwargs)

    def loglikelihood(self, requests: list, *args: Any, **kwargs: Any) -> list:
        return self._answer("loglikelihood", requests, *args, **kwargs)

    def loglikelihood_rolling(self, requests: list, *args: Any, **kwargs: Any) -> list:
        return self._answer("loglikelihood_rolling", requests, *args, **kwargs)

    def _answer(self, attr: str, requests: list, *args: Any, **kwargs: Any) -> list:
        keys = [self._key(attr, req) for req in requests]
        found = self.store.get_many(k for k in keys if k)
        results: list[Any] = [None] * len(requests)
        remaining: list[int] = []
        for index, (req, key) in enumerate(zip(requests, keys, strict=True)):
            if key is not None and key in found:
                results[index] = _restore(attr, found[key])
                self.counts[req.task_name].from_cache += 1
            else:
                remaining.append(index)
        log.info(
            "%s: %d answer(s) from the cache %s, %d to compute",
            attr,
            len(requests) - len(remaining),
            self.path,
            len(remaining),
        )
        if not remaining:
            return results
        todo = [requests[i] for i in remaining]
        self._attr = attr
        self._failures_seen = len(failures.FAILURES.items)
        self._failed_docs = set()
        self._pending = _Pending([(i, requests[i], keys[i]) for i in remaining])
        try:
            outputs = getattr(self.lm, attr)(todo, *args, **kwargs)
        finally:
            pending, self._pending = self._pending, None
        for index, output in zip(remaining, outputs, strict=True):
            req, key = requests[index], keys[index]
            results[index] = output
            if self._is_failed(req, output):
                self.counts[req.task_name].failed += 1
            elif key is None:
                self.counts[req.task_name].not_cached += 1
            else:
                if index not in pending.stored or pending.stored[index] != output:
                    self._put(attr, req, key, output)
                self.counts[req.task_name].computed += 1
        return results

    # -- per-answer reports -------------------------------------------------------------------
    def store_partial(self, attr: str, req_args: Any, res: Any) -> None:
        """Store an answer reported by ``add_partial`` when its request is certain."""
        pending = self._pending
        if pending is None or attr != self._attr:
            return
        match = pending.match_partial(req_args)
        if match is not None:
            self._store_pending(attr, pending, *match, res)

    def store_answer(self, attr: str, instance: Any, res: Any) -> None:
        """Store the answer to one pending request instance (exact)."""
        pending = self._pending
        if pending is None or attr != self._attr:
            return
        found = pending.by_instance.get(id(instance))
        if found is not None:
            pending.take(*found)
            self._store_pending(attr, pending, *found, res)

    def _store_pending(self, attr: str, pending: _Pending, index: int, key: str, res: Any) -> None:
        req = pending.requests[index]
        if index in pending.stored or self._is_failed(req, res):
            return
        if self._put(attr, req, key, res):
            pending.stored[index] = res

    # -- helpers ------------------------------------------------------------------------------
    def _key(self, attr: str, req: Any) -> str | None:
        if failures.failed_at_build(req.args):
            return None  # the backend answers it with its failure at once; nothing to keep
        gen = req.args[1] if attr == "generate_until" and len(req.args) > 1 else None
        if isinstance(gen, dict) and gen.get("do_sample", False):
            self._warn_once(
                "sampling",
                "requests with do_sample=True are not cached (each sample must be drawn anew)",
            )
            return None
        try:
            return request_key(attr, req.args, self.model_id)
        except UncacheableRequest as exc:
            self._warn_once(str(exc), f"task {req.task_name}: {exc}; such requests bypass it")
            return None

    def _put(self, attr: str, req: Any, key: str, value: Any) -> bool:
        try:
            self.store.put(
                key,
                value,
                self.model_id,
                attr,
                task=req.task_name,
                doc=doc_label(req),
            )
        except (TypeError, ValueError) as exc:
            self._warn_once(f"value {type(value)}", f"answer not cached: not plain data ({exc})")
            return False
        return True

    def _is_failed(self, req: Any, answer: Any) -> bool:
        if answer is None or failures.failed_at_build(req.args):
            return True
        is_failure = getattr(failures, "is_failure", None)
        if is_failure is not None and is_failure(answer):
            return True
        items = failures.FAILURES.items
        for failure in items[self._failures_seen :]:
            self._failed_docs.add((failure.task, failure.doc))
        self._failures_seen = len(items)
        return any((req.task_name, label) in self._failed_docs for label in _doc_labels(req))

    def _warn_once(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            log.warning("request cache %s: %s", self.path, message)

    def task_counts(self) -> dict[str, dict[str, int]]:
        """Per-task counts of this run (from cache, computed, failed, not cached)."""
        return {task: counts.as_dict() for task, counts in self.counts.items()}


def report_answer(lm: Any, request_type: str, request: Any, answer: Any) -> None:
    """Report one finished request's answer to the backend's cache hook, the moment it exists.

    Under ``--use_cache`` it is stored under its exact request (media included); with
    lm-eval's hook (or none) it goes through ``add_partial`` as upstream backends do.
    """
    hook = getattr(lm, "cache_hook", None)
    if isinstance(hook, MeraCacheHook):
        hook.add_answer(request_type, request, answer)
    elif hook is not None:
        hook.add_partial(request_type, request.args[:2], answer)


@contextmanager
def answers_in_order(lm: Any, requests: Sequence[Any]) -> Iterator[None]:
    """Route upstream ``add_partial`` calls made while ``requests`` run to exact reports.

    For backends that hand a subset of their requests to upstream code whose ``add_partial``
    reports come in request order among equal (context, settings) pairs, as lm-eval's stable
    sorting collator guarantees. Does nothing when the backend is not cached.
    """
    hook = getattr(lm, "cache_hook", None)
    if not isinstance(hook, MeraCacheHook):
        yield
        return
    queues: dict[str, deque[Any]] = defaultdict(deque)
    for req in requests:
        queues[partial_signature(req.args) or ""].append(req)

    class _Ordered:
        def add_partial(self, attr: str, req_args: Any, res: Any) -> None:
            queue = queues.get(partial_signature(req_args) or "")
            if queue:
                hook.add_answer(attr, queue.popleft(), res)

    lm.cache_hook = _Ordered()
    try:
        yield
    finally:
        lm.cache_hook = hook


def _restore(attr: str, value: Any) -> Any:
    # JSON has no tuples: loglikelihood answers are (logprob, is_greedy).
    if attr == "loglikelihood" and isinstance(value, list):
        return tuple(value)
    return value


def _doc_labels(req: Any) -> list[str]:
    labels = [str(req.doc_id)]
    doc = req.doc if isinstance(req.doc, dict) else {}
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    if "id" in meta:
        labels.append(str(meta["id"]))
    return labels
