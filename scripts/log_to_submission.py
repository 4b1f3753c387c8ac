#!/usr/bin/env python
"""The original MERA Multi packer's command line, unchanged:

    python scripts/log_to_submission.py --outputs_dir OUT --dst_dir submission/ --model_args ARGS

It runs the same code as ``mera-mm pack`` (lm_eval_patches.submission.pack): the archive goes
to ``<dst_dir>.zip`` next to ``dst_dir``, validated; see docs/submission.md.
"""

from __future__ import annotations

import argparse
import sys

from lm_eval_patches.submission.pack import PACK_ERRORS, add_pack_arguments, run_pack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="log_to_submission.py", description=__doc__)
    add_pack_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_pack(args)
    except PACK_ERRORS as exc:
        print(f"log_to_submission.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
