"""Start-up hook, imported by ``mera_multimodal.pth`` in every interpreter.

Stock lm-eval resolves ``--model NAME`` before it imports any task code and has no hook for
extra CLI flags, so a task pack alone cannot add backends or flags. This module installs a tiny
post-import hook: once ``lm_eval.api.registry`` is imported our backends are registered, and
once ``lm_eval._cli.run`` is imported our flags are added to ``lm-eval run``; once
``lm_eval.api.group`` is imported, MERA group scores are applied (``groups.py``); once
``lm_eval.evaluator`` is imported, ``--use_cache`` gets our request cache, runs write
``run_status.json`` (``cache/install.py``) and every run's model gets the ruTiE dialogue runner
(``models/dialogue_runner.py``). It imports nothing
heavy and does nothing at all in interpreters that never import lm-eval.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from types import ModuleType


def _after_registry(module: ModuleType) -> None:
    from lm_eval_patches.registration import register_backends

    register_backends()


def _after_group(module: ModuleType) -> None:
    from lm_eval_patches.groups import install as install_group_aggregation

    install_group_aggregation(module)


def _after_evaluator(module: ModuleType) -> None:
    from lm_eval_patches.cache.install import install as install_cache
    from lm_eval_patches.models.dialogue_runner import install as install_dialogue_runner

    install_cache(module)
    # The runner wraps whatever model evaluate gets (our cache included), so each dialogue
    # question reaches the cache with the history it is asked with, and its key covers it.
    install_dialogue_runner(module)


def _after_cli_run(module: ModuleType) -> None:
    from lm_eval_patches.cli_flags import install_run_flags

    install_run_flags(module)


_HOOKS: dict[str, Callable[[ModuleType], None]] = {
    "lm_eval.api.registry": _after_registry,
    "lm_eval._cli.run": _after_cli_run,
    "lm_eval.api.group": _after_group,
    "lm_eval.evaluator": _after_evaluator,
}


class _HookedLoader(importlib.abc.Loader):
    """Delegates to the real loader, then runs our hook on the fresh module."""

    def __init__(self, loader: importlib.abc.Loader, hook: Callable[[ModuleType], None]):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):  # noqa: D102
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:  # noqa: D102
        self._loader.exec_module(module)
        self._hook(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # noqa: D102
        hook = _HOOKS.get(fullname)
        if hook is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _HookedLoader(spec.loader, hook)
        return spec


def install() -> None:
    """Install the hook once; run hooks now for modules that are already imported."""
    if any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _PostImportFinder())
    for name, hook in _HOOKS.items():
        if name in sys.modules:
            hook(sys.modules[name])


install()
