"""``mera-mm pack``: a run's lm-eval logs -> the validated MERA submission archive."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``pack`` to the ``mera-mm`` subcommands (arguments as scripts/log_to_submission.py)."""
    from lm_eval_patches.submission.pack import add_pack_arguments, run_pack

    parser = sub.add_parser(
        "pack",
        help="pack lm-eval samples logs into the archive the MERA site takes (validated)",
        description="Pack lm-eval samples logs into <dst_dir>.zip (next to dst_dir), validated; "
        "exit 0 when written, 1 when refused (invalid or incomplete), 2 when no MERA logs "
        "are found.",
    )
    add_pack_arguments(parser)
    parser.set_defaults(func=run_pack)
