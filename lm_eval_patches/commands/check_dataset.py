"""``mera-mm check-dataset``: validate a MERA dataset folder (source or hub layout)."""

from __future__ import annotations

import argparse


def _range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX seconds, got {text!r}") from exc
    return low, high


def run(args: argparse.Namespace) -> int:
    """Check each folder, print the report(s); 1 when a check fails, 2 on a bad folder."""
    import json

    from lm_eval_patches.dataset_check.layout import DatasetLayoutError, dataset_folders
    from lm_eval_patches.dataset_check.media import MediaRules
    from lm_eval_patches.dataset_check.run import check_dataset

    rules = MediaRules(
        min_side=args.min_side,
        max_side=args.max_side,
        blur_threshold=args.blur_threshold,
        phash_distance=args.phash_distance,
        audio_seconds=args.audio_seconds,
        video_seconds=args.video_seconds,
    )
    reports = []
    folders = [folder for given in args.dirs for folder in dataset_folders(given)]
    for folder in folders:
        try:
            reports.append(check_dataset(folder, args.access, rules, not args.no_media))
        except DatasetLayoutError as exc:
            raise ValueError(str(exc)) from exc
    if args.json:
        payload = [r.as_dict() for r in reports]
        print(
            json.dumps(payload[0] if len(payload) == 1 else payload, ensure_ascii=False, indent=2)
        )
    else:
        print("\n\n".join(r.to_text() for r in reports))
    return 1 if any(r.failed(args.strict) for r in reports) else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``check-dataset`` to the ``mera-mm`` subcommands."""
    cd = sub.add_parser(
        "check-dataset",
        help="validate a dataset in the MERA format (source or hub layout)",
        description="Checks records (fields, placeholders, ids, shots, golds, letter balance, "
        "prompt endings) and media (readable, format, resolution, blur, near-duplicates, "
        "duration, streams). Exit status: 0 clean, 1 a check failed, 2 not a dataset.",
    )
    cd.add_argument(
        "dirs",
        nargs="+",
        metavar="DIR",
        help="dataset folder(s), or a mirror folder (each dataset in it is checked on its own)",
    )
    cd.add_argument("--json", action="store_true", help="print the report as JSON")
    cd.add_argument(
        "--access",
        choices=["public", "private"],
        default=None,
        help="override the access the folder declares (private: test golds must be hidden)",
    )
    cd.add_argument("--strict", action="store_true", help="warnings fail the check too")
    cd.add_argument("--no-media", action="store_true", help="skip decoding media files")
    cd.add_argument("--min-side", type=int, default=224, help="smallest image side, px")
    cd.add_argument("--max-side", type=int, default=3840, help="largest image side, px")
    cd.add_argument("--blur-threshold", type=float, default=100.0)
    cd.add_argument("--phash-distance", type=int, default=4)
    cd.add_argument("--audio-seconds", type=_range, default=(0.1, 600.0), metavar="MIN:MAX")
    cd.add_argument("--video-seconds", type=_range, default=(0.5, 600.0), metavar="MIN:MAX")
    cd.set_defaults(func=run)
