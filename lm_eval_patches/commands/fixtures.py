"""``mera-mm fixtures``: write synthetic MERA datasets as a local hub mirror."""

from __future__ import annotations

import argparse
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from exc
    return width, height


def run(args: argparse.Namespace) -> int:
    """Write the mirror and say how to use it; returns the exit status."""
    from lm_eval_patches.fixtures.builder import FixtureOptions, build_fixtures

    options = FixtureOptions(
        shots=args.shots,
        test=args.test,
        private=args.private,
        image_size=args.image_size,
        seed=args.seed,
    )
    written = build_fixtures(Path(args.out), args.datasets, options, args.include_path)
    print(f"wrote {len(written)} dataset(s) under {Path(args.out).resolve()}")
    print(f"use them with: export MERA_DATA_DIR={Path(args.out).resolve()}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``fixtures`` to the ``mera-mm`` subcommands."""
    fx = sub.add_parser("fixtures", help="write synthetic MERA datasets as a local hub mirror")
    fx.add_argument("--out", required=True, help="mirror folder (use it as MERA_DATA_DIR)")
    fx.add_argument(
        "--datasets",
        nargs="*",
        default=None,
        help="hub names to write (default: all), e.g. ruCLEVR WEIRD",
    )
    fx.add_argument("--shots", type=int, default=None, help="docs per shots split and config")
    fx.add_argument("--test", type=int, default=None, help="docs per test split and config")
    fx.add_argument(
        "--private",
        action="store_true",
        help="hide golds of private test splits (outputs empty, as on the hub)",
    )
    fx.add_argument(
        "--image-size",
        type=_size,
        default=None,
        metavar="WxH",
        help="draw every image at this size as JPEG (for benchmarks)",
    )
    fx.add_argument("--seed", type=int, default=0)
    fx.add_argument(
        "--include_path",
        action="append",
        default=None,
        metavar="DIR",
        help="also write the datasets declared by DIR/<task>/fixture.yaml (new tasks)",
    )
    fx.set_defaults(func=run)
