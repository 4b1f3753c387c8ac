"""``mera-mm new-task``: the scaffold works unchanged with the fixture builder, lm-eval's task
loader, the prompt snapshot checks and check-dataset.

The scaffold goes into a temporary copy of the task pack (never into the real one), one task per
modality. A baseline run of a scaffolded task through the real ``lm-eval`` CLI is the "task code"
example of docs/adding-a-dataset.md, which tests/test_docs.py runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, TASKS_DIR
from test_prompts import CYRILLIC, check_snapshot

from lm_eval_patches.cli import main
from lm_eval_patches.dataset_check.run import check_dataset
from lm_eval_patches.fixtures.builder import FixtureOptions, build_fixtures
from lm_eval_patches.tasks.prompt import PLACEHOLDER_RE
from lm_eval_patches.tasks.snapshot import render

NEW = {"scaffoldvqa": "image", "scaffoldaqa": "audio", "scaffoldvideoqa": "video"}
DATASETS = {
    "scaffoldvqa": "ScaffoldVQA",
    "scaffoldaqa": "ScaffoldAQA",
    "scaffoldvideoqa": "ScaffoldVideoQA",
}


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("new-task")
    pack = root / "multimodal_tasks"
    shutil.copytree(TASKS_DIR, pack)
    (root / "docs" / "tasks").mkdir(parents=True)  # a repository: new-task keeps its catalogue
    # ... tags the dataset's skills (docs/skills.md regenerated) and writes its prompt snapshot.
    (root / "lm_eval_patches" / "data").mkdir(parents=True)
    shutil.copy2(REPO / "lm_eval_patches" / "data" / "skills.yaml", root / "lm_eval_patches/data")
    shutil.copy2(REPO / "docs" / "skills.md", root / "docs" / "skills.md")
    (root / "tests" / "snapshots" / "prompts").mkdir(parents=True)
    for name, modality in NEW.items():
        args = ["new-task", name, "--modality", modality, "--dataset", DATASETS[name]]
        access = ["--access", "private"] if modality == "audio" else []
        assert main([*args, *access, "--tasks-dir", str(pack)]) == 0
    mirror = root / "mirror"
    options = FixtureOptions(private=True)  # as the hub serves them: private golds hidden
    build_fixtures(mirror, list(DATASETS.values()), options, include_paths=[pack])
    return {"pack": pack, "mirror": mirror, "catalogue": root / "docs" / "tasks", "root": root}


def test_scaffold_files(scaffolded: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    folder = scaffolded["pack"] / "scaffoldvqa"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "fixture.yaml",
        "scaffoldvqa.yaml",
    ]
    assert "include: ../_mera_template_yaml" in (folder / "scaffoldvqa.yaml").read_text()
    # A second scaffold of the same name, a bad name or a foreign folder is refused.
    pack = str(scaffolded["pack"])
    assert main(["new-task", "scaffoldvqa", "--modality", "image", "--tasks-dir", pack]) == 2
    assert main(["new-task", "Bad-Name", "--modality", "image", "--tasks-dir", pack]) == 2
    assert main(["new-task", "weird", "--modality", "image", "--tasks-dir", pack]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "lower-case" in err


def test_scaffolded_tasks_load_render_and_snapshot(
    scaffolded: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lm_eval.tasks

    monkeypatch.setenv("MERA_DATA_DIR", str(scaffolded["mirror"]))
    manager = lm_eval.tasks.TaskManager(
        include_path=str(scaffolded["pack"]), include_defaults=False
    )
    tasks = manager.load(list(NEW))["tasks"]
    for name, modality in NEW.items():
        snap = render(tasks[name])
        # The same sanity checks the prompt snapshot test applies to every task.
        assert CYRILLIC.search(snap["prompt"]) and "{" not in snap["prompt"]
        slots = PLACEHOLDER_RE.findall(snap["prompt"])
        assert [kind for kind, _ in slots] == [m["kind"] for m in snap["media"]] == [modality]
        assert snap["media"][0]["mime"].startswith(modality + "/")
        # The audio one was scaffolded private: its test golds are hidden, as on the hub.
        assert snap["target"] in ({""} if modality == "audio" else {"A", "B", "C", "D"})
        monkeypatch.setenv("MERA_UPDATE_SNAPSHOTS", "1")
        check_snapshot(tmp_path / f"{name}.json", snap)
        monkeypatch.delenv("MERA_UPDATE_SNAPSHOTS")
        check_snapshot(tmp_path / f"{name}.json", render(tasks[name]))
        if modality != "audio":  # new-task's snapshot: the suite's mirror has every gold
            stored = scaffolded["root"] / "tests" / "snapshots" / "prompts" / f"{name}.json"
            check_snapshot(stored, snap)


def test_scaffold_tags_skills_and_regenerates_the_page(scaffolded: dict[str, Path]) -> None:
    import yaml

    from lm_eval_patches.commands.skills import render_markdown
    from lm_eval_patches.skills import load_taxonomy, parse_taxonomy, task_datasets

    root = scaffolded["root"]
    text = (root / "lm_eval_patches" / "data" / "skills.yaml").read_text(encoding="utf-8")
    taxonomy = parse_taxonomy(yaml.safe_load(text))
    shipped = load_taxonomy()
    assert text.startswith((REPO / "lm_eval_patches/data/skills.yaml").read_text("utf-8"))
    added = {f"MERA-evaluation/{d}" for d in DATASETS.values()}
    assert set(taxonomy.datasets) == set(shipped.datasets) | added
    for dataset in added:
        assert taxonomy.dataset_skills(dataset) == ("Object recognition",)
    page = (root / "docs" / "skills.md").read_text(encoding="utf-8")
    assert page == render_markdown(taxonomy, task_datasets(scaffolded["pack"]))
    assert "| ScaffoldAQA | `scaffoldaqa` | Object recognition |" in page


def test_scaffolded_datasets_pass_check_dataset(scaffolded: dict[str, Path]) -> None:
    for name, dataset in DATASETS.items():
        # MERA's default media rules: a new task's fixture images are drawn within them.
        report = check_dataset(scaffolded["mirror"] / "MERA-evaluation" / dataset)
        assert report.access == ("private" if NEW[name] == "audio" else "public")
        assert not report.errors(), report.to_text()


def test_scaffold_updates_the_task_catalogue(scaffolded: dict[str, Path]) -> None:
    from lm_eval_patches.catalogue import stale_pages

    assert stale_pages(scaffolded["pack"], scaffolded["catalogue"]) == []
    index = (scaffolded["catalogue"] / "README.md").read_text(encoding="utf-8")
    assert "| [scaffoldaqa](scaffoldaqa.md) | not grouped | not grouped | `scaffoldaqa` |" in index
