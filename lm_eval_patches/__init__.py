"""mera-multimodal: MERA Multi as a task pack and plugin for stock lm-eval.

Importing this package is cheap on purpose: the start-up hook imports it in every interpreter.
"""

from __future__ import annotations

__version__ = "0.1.0"


def register() -> None:
    """Register our backends with lm-eval's model registry (idempotent)."""
    from lm_eval_patches.registration import register_backends

    register_backends()
