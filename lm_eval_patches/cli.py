"""``mera-mm``: our own subcommands (lm-eval itself runs the evaluations)."""

from __future__ import annotations

import argparse
import importlib
import sys

from lm_eval_patches.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    """The ``mera-mm`` argument parser, with every module of ``commands.COMMANDS`` added."""
    parser = argparse.ArgumentParser(prog="mera-mm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"lm_eval_patches.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mera-mm`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"mera-mm {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
