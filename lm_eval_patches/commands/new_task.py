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
    root = Path(args.tasks_dir).resolve().parent
    catalogue = root / "docs" / "tasks"
    if catalogue.is_dir():  # inside the repository: keep the generated task catalogue current
        from lm_eval_patches.catalogue import write_pages

        write_pages(args.tasks_dir, catalogue)
        print(f"updated the task catalogue in {catalogue}")
    _tag_and_snapshot(scaffold, args.tasks_dir, root)
    pack = args.tasks_dir
    dataset_id = f"MERA-evaluation/{scaffold.dataset}"
    print(
        "next: edit the prompt, fields and README; then\n"
        f"  mera-mm fixtures --out .mera-data --datasets {scaffold.dataset} --include_path {pack}\n"
        f"  mera-mm check-dataset .mera-data/{dataset_id}\n"
        f"  MERA_DATA_DIR=.mera-data lm-eval --model mera-baseline --include_path {pack} "
        f"--tasks {scaffold.name}\n"
        f"then add {scaffold.name} to its group YAMLs (_mera_{scaffold.modality}.yaml, "
        f"_mera_{scaffold.access}.yaml), replace the placeholder skill of {dataset_id} in "
        "lm_eval_patches/data/skills.yaml with the skills it tests (then mera-mm skills -o "
        "docs/skills.md), rewrite its prompt snapshot after editing the prompt "
        f"(MERA_UPDATE_SNAPSHOTS=1 pytest tests/test_prompts.py -k {scaffold.name}) and run "
        "make test (the tests find tasks with a fixture.yaml by themselves); "
        "docs/adding-a-dataset.md has the whole path"
    )
    return 0


def _tag_and_snapshot(scaffold, tasks_dir: str, root: Path) -> None:
    """Inside the repository: tag the dataset with a placeholder skill (docs/skills.md
    regenerated) and write the task's prompt snapshot, so ``make test`` passes as scaffolded."""
    skills_file = root / "lm_eval_patches" / "data" / "skills.yaml"
    if skills_file.is_file():
        from lm_eval_patches.commands.skills import render_markdown
        from lm_eval_patches.skills import DEFAULT_SKILLS, tag_dataset, task_datasets

        skill = DEFAULT_SKILLS[scaffold.modality]
        taxonomy = tag_dataset(skills_file, f"MERA-evaluation/{scaffold.dataset}", [skill])
        print(
            f"skills of MERA-evaluation/{scaffold.dataset} in {skills_file}: "
            f"{', '.join(taxonomy.dataset_skills(f'MERA-evaluation/{scaffold.dataset}'))}"
        )
        page = root / "docs" / "skills.md"
        if page.is_file():
            page.write_text(render_markdown(taxonomy, task_datasets(tasks_dir)), encoding="utf-8")
            print(f"updated {page}")
    snapshots = root / "tests" / "snapshots" / "prompts"
    if snapshots.is_dir():
        from lm_eval_patches.tasks.snapshot import write_task_snapshot

        path = write_task_snapshot(tasks_dir, scaffold.name, scaffold.dataset, snapshots)
        print(f"wrote the prompt snapshot {path}")


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
