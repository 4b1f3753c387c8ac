"""``mera-mm validate``: check a submission archive (names, JSON shape, ids, completeness)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 0 if valid (and complete unless --allow-partial), else 1."""
    from lm_eval_patches.submission.validate import validate_archive

    report = validate_archive(args.archive, data_dir=args.data)
    for line in report.lines():
        print(line)
    return 0 if report.ok(args.allow_partial) else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``validate`` to the ``mera-mm`` subcommands."""
    parser = sub.add_parser(
        "validate",
        help="check a MERA submission archive; problems by code (docs/submission.md)",
    )
    parser.add_argument("archive", help="the .zip to check")
    parser.add_argument(
        "--data",
        default=None,
        help="hub-layout mirror with the test ids (default: MERA_DATA_DIR, else the hub)",
    )
    parser.add_argument(
        "--allow-partial",
        "--allow_partial",
        dest="allow_partial",
        action="store_true",
        help="exit 0 for a valid archive that misses datasets or test ids",
    )
    parser.set_defaults(func=run)
