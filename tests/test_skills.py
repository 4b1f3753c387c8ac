"""The skills taxonomy data file, every task's tags, and docs/skills.md being current."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import ALL_TASKS, CONTRIBUTED_DATASETS, REPO, TASKS_DIR

from lm_eval_patches.commands.skills import render_markdown
from lm_eval_patches.skills import load_taxonomy, parse_taxonomy, task_datasets


def test_every_task_is_tagged_with_known_skills() -> None:
    taxonomy = load_taxonomy()
    tasks = task_datasets(TASKS_DIR)
    assert set(ALL_TASKS) <= set(tasks)
    for task, dataset in tasks.items():
        skills = taxonomy.dataset_skills(dataset)
        assert skills, f"task {task} ({dataset}) has no skills in lm_eval_patches/data/skills.yaml"
        for name in skills:
            assert taxonomy.skill(name).modalities  # a leaf, with modalities
    # Exactly the 18 MERA datasets are tagged, plus those of tasks added with `mera-mm new-task`.
    mera = {tasks[task] for task in ALL_TASKS}
    assert len(mera) == 18
    assert set(taxonomy.datasets) == mera | set(CONTRIBUTED_DATASETS.values())


def test_original_taxonomy_bugs_are_fixed() -> None:
    """MERA_SPEC B34: "Ethics" was no leaf; the typo "patter"; levels repeating their parent."""
    taxonomy = load_taxonomy()
    names = [s.name for s in taxonomy.skills()]
    assert len(names) == len(set(names)) == 56  # the original's 55 leaves plus Ethics
    assert taxonomy.skill("Ethics").path[0] == "Reasoning"
    assert "Ethics" in taxonomy.dataset_skills("MERA-evaluation/ruHHH-Image")
    groups = {name for skill in taxonomy.skills() for name in skill.path}
    assert "Repeating pattern recognition" in groups
    assert not any("patter " in name for name in groups | set(names))
    siblings = Counter(skill.path for skill in taxonomy.skills())
    for skill in taxonomy.skills():
        # A group named like its skill is kept only when it holds other skills too.
        assert skill.path[-1] != skill.name or siblings[skill.path] > 1, skill
        assert all(a != b for a, b in zip(skill.path, skill.path[1:], strict=False)), skill.path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"categories": [{"name": "A", "skills": [{"name": "x", "modalities": ["smell"]}]}]},
            "modalities",
        ),
        (
            {
                "categories": [{"name": "A", "skills": [{"name": "x", "modalities": ["image"]}]}],
                "datasets": {"d": ["Ethics"]},
            },
            "no leaf",
        ),
        (
            {
                "categories": [
                    {
                        "name": "A",
                        "skills": [
                            {"name": "x", "modalities": ["image"]},
                            {"name": "x", "modalities": ["audio"]},
                        ],
                    }
                ]
            },
            "repeat",
        ),
        ({"categories": [{"name": "A"}]}, "has no skills"),
    ],
)
def test_bad_taxonomy_is_a_clear_error(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_taxonomy(data)


def test_docs_skills_page_is_current() -> None:
    """docs/skills.md is generated: run `mera-mm skills -o docs/skills.md` after editing."""
    expected = render_markdown(load_taxonomy(), task_datasets(TASKS_DIR))
    actual = (REPO / "docs" / "skills.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/skills.md is stale: run `mera-mm skills -o docs/skills.md`"
