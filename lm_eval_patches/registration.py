"""Registration of our backends in lm-eval's model registry."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# Backend name -> "module:Class". Names shared with upstream (hf-multimodal) replace the upstream
# class with our subclass, as the original project's fork did.
BACKENDS: dict[str, str] = {
    "mera-baseline": "lm_eval_patches.models.baseline:MeraBaselineLM",
    "hf-multimodal": "lm_eval_patches.models.hf_multimodal:MeraHFMultimodalLM",
    "local-chat-completions": "lm_eval_patches.models.api_chat:MeraLocalChatCompletion",
    "openai-chat-completions": "lm_eval_patches.models.api_chat:MeraOpenAIChatCompletion",
}

_done = False


def register_backends() -> None:
    """Put our backends into lm-eval's registry; idempotent and safe to call early."""
    global _done
    if _done:
        return
    # Upstream fills its registry lazily only while it is empty; fill it first so that our
    # entries do not hide the built-in backends.
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry

    with model_registry._lock:
        for name, target in BACKENDS.items():
            current = model_registry._objs.get(name)
            if _is_ours(current):
                continue  # lm-eval discovered our entry point itself: stand down.
            model_registry._objs[name] = target
    _done = True


def _is_ours(entry: object) -> bool:
    if isinstance(entry, type):
        return entry.__module__.startswith("lm_eval_patches.")
    value = getattr(entry, "value", entry)  # an EntryPoint or a "module:Class" string
    return isinstance(value, str) and value.startswith("lm_eval_patches.")


def import_upstream(name: str | tuple[str, ...], module: str, attr: str) -> type:
    """Import the upstream class that one of our same-named backends subclasses.

    Upstream modules register their classes under the shared names when imported, and the
    registry raises on any other entry; ours step aside for the import and are put back
    afterwards. ``name`` lists every shared name the upstream module registers.
    """
    import importlib

    from lm_eval.api.registry import model_registry

    names = (name,) if isinstance(name, str) else tuple(name)
    with model_registry._lock:  # re-entrant: upstream's decorator takes it again
        current = {n: model_registry._objs.pop(n, None) for n in names}
        try:
            upstream = getattr(importlib.import_module(module), attr)
        finally:
            for n, entry in current.items():
                if entry is not None and (_is_ours(entry) or n not in model_registry._objs):
                    model_registry._objs[n] = entry
    return upstream
