"""``mera-mm new-task``: scaffold a task folder in the task pack."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    """Write the folder and print the next steps."""
    from lm_eval_patches.scaffold import TaskScaffold, write_scaffold

    scaffold = TaskScaffold(args.name, args.modality, args.dataset or args.name, args.access)
    written = write_scaffold(scaffold, args.tasks_dir)
    for path in written:
        print(f"wrote {path}")
    catalogue = Path(args.tasks_dir).resolve().parent / "docs" / "tasks"
    if catalogue.is_dir():  # inside the repository: keep the generated task catalogue current
        from lm_eval_patches.catalogue import write_pages

        write_pages(args.tasks_dir, catalogue)
        print(f"updated the task catalogue in {catalogue}")
    pack = args.tasks_dir
    print(
        "next: edit the prompt, fields and README; then\n"
        f"  mera-mm fixtures --out .mera-data --datasets {scaffold.dataset} --include_path {pack}\n"
        f"  mera-mm check-dataset .mera-data/MERA-evaluation/{scaffold.dataset}\n"
        f"  MERA_DATA_DIR=.mera-data lm-eval --model mera-baseline --include_path {pack} "
        f"--tasks {scaffold.name}\n"
        f"then add {scaffold.name} to its group YAMLs (_mera_{scaffold.modality}.yaml, "
        f"_mera_{scaffold.access}.yaml) and to the task lists of tests/conftest.py, tag "
        f"MERA-evaluation/{scaffold.dataset} with its skills in lm_eval_patches/data/skills.yaml "
        "(then mera-mm skills -o docs/skills.md), write its "
        f"prompt snapshot (MERA_UPDATE_SNAPSHOTS=1 pytest tests/test_prompts.py -k "
        f"{scaffold.name}) and run make test; docs/adding-a-dataset.md has the whole path"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``new-task`` to the ``mera-mm`` subcommands."""
    nt = sub.add_parser("new-task", help="scaffold a task folder (YAML, README, fixture spec)")
    nt.add_argument("name", help="lm-eval task name (lower case), e.g. rumyvqa")
    nt.add_argument("--modality", required=True, choices=["image", "audio", "video"])
    nt.add_argument("--dataset", default=None, help="hub repository name (default: NAME)")
    nt.add_argument("--access", choices=["public", "private"], default="public")
    nt.add_argument(
        "--tasks-dir", default="multimodal_tasks", help="the task pack (default: multimodal_tasks)"
    )
    nt.set_defaults(func=run)
