"""The MERA Multi skills taxonomy (``data/skills.yaml``) and the skills of each task.

A skill is a leaf of the taxonomy: a name unique across it, its path of categories (top level
first: Perception, Knowledge or Reasoning, then finer groups), the modalities it applies to
(``image``, ``audio``, ``video``) and a one-line description. Datasets are tagged by their hub id
(``dataset_path`` in a task YAML), so every task of a dataset, ruTiE's variants included, has its
dataset's skills. Facts from the original's taxonomy; see the data file for what differs (B34).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

MODALITIES = ("image", "audio", "video")


@dataclass(frozen=True)
class Skill:
    """One leaf of the taxonomy."""

    name: str
    path: tuple[str, ...]  # enclosing categories, top level first
    modalities: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Category:
    """An inner node: its own skills and its sub-categories."""

    name: str
    description: str
    skills: tuple[Skill, ...]
    children: tuple[Category, ...]


@dataclass(frozen=True)
class Taxonomy:
    """The whole taxonomy and the dataset tags."""

    categories: tuple[Category, ...]
    datasets: dict[str, tuple[str, ...]]  # hub id -> skill names

    def skills(self) -> Iterator[Skill]:
        """Every skill, depth first, in file order."""

        def walk(cat: Category) -> Iterator[Skill]:
            yield from cat.skills
            for child in cat.children:
                yield from walk(child)

        for cat in self.categories:
            yield from walk(cat)

    def skill(self, name: str) -> Skill:
        """The skill called ``name``; KeyError naming the unknown skill otherwise."""
        for skill in self.skills():
            if skill.name == name:
                return skill
        raise KeyError(f"unknown skill {name!r} (see lm_eval_patches/data/skills.yaml)")

    def dataset_skills(self, dataset_path: str) -> tuple[str, ...]:
        """Skill names of a dataset by its hub id (empty when the dataset is not tagged)."""
        return self.datasets.get(dataset_path, ())


def _category(raw: dict[str, Any], parents: tuple[str, ...], where: str) -> Category:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a category without a name under {' > '.join(parents)}")
    path = (*parents, name)
    skills = []
    for entry in raw.get("skills") or []:
        mods = tuple(entry.get("modalities") or ())
        bad = [m for m in mods if m not in MODALITIES]
        if not mods or bad:
            raise ValueError(f"{where}: skill {entry.get('name')!r} has modalities {list(mods)}")
        skills.append(Skill(str(entry["name"]), path, mods, str(entry.get("description", ""))))
    children = tuple(_category(c, path, where) for c in raw.get("children") or [])
    if not skills and not children:
        raise ValueError(f"{where}: category {' > '.join(path)} has no skills")
    return Category(name, str(raw.get("description", "")), tuple(skills), children)


def parse_taxonomy(data: dict[str, Any], where: str = "skills.yaml") -> Taxonomy:
    """Build and check a Taxonomy from the YAML's mapping.

    Raises ValueError when a skill name repeats, a dataset names a skill that is not a leaf,
    or a skill has no (or an unknown) modality.
    """
    cats = tuple(_category(c, (), where) for c in data.get("categories") or [])
    taxonomy = Taxonomy(cats, {})
    names = [s.name for s in taxonomy.skills()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{where}: skill names repeat: {repeated}")
    datasets: dict[str, tuple[str, ...]] = {}
    for dataset, tagged in (data.get("datasets") or {}).items():
        unknown = [s for s in tagged if s not in names]
        if unknown:
            raise ValueError(f"{where}: dataset {dataset} names skills that are no leaf: {unknown}")
        datasets[dataset] = tuple(dict.fromkeys(tagged))
    return Taxonomy(cats, datasets)


@functools.cache
def load_taxonomy() -> Taxonomy:
    """The taxonomy shipped with the package (read once per process)."""
    text = resources.files("lm_eval_patches").joinpath("data/skills.yaml").read_text("utf-8")
    return parse_taxonomy(yaml.safe_load(text))


def task_datasets(tasks_dir: str | Path) -> dict[str, str]:
    """``{task name: dataset_path}`` for every task YAML under ``tasks_dir`` (groups skipped).

    ``dataset_path`` may come from an included YAML (one level, as our templates use).
    """
    from lm_eval_patches.task_pack import load_yaml

    found: dict[str, str] = {}
    for path in sorted(Path(tasks_dir).rglob("*.yaml")):
        raw = load_yaml(path)
        if not isinstance(raw, dict) or "task" not in raw or "group" in raw:
            continue
        dataset = raw.get("dataset_path")
        if dataset is None and isinstance(raw.get("include"), str):
            dataset = load_yaml(path.parent / raw["include"]).get("dataset_path")
        if isinstance(raw["task"], str) and dataset:
            found[raw["task"]] = dataset
    return found


# A new dataset's first tag, until its contributor lists what it really tests: a leaf that
# applies to every modality, so the scaffold passes the taxonomy checks as written.
DEFAULT_SKILLS = {modality: "Object recognition" for modality in MODALITIES}


def tag_dataset(skills_file: str | Path, dataset_path: str, skills: list[str]) -> Taxonomy:
    """Append ``dataset_path: [skills]`` to the ``datasets`` map of a taxonomy file (the last
    block of ``data/skills.yaml``; comments and layout kept) and return the parsed result. A
    dataset already tagged keeps its tags (the file is left as it is).

    Raises:
        ValueError: a skill is no leaf, or the file does not end with its ``datasets`` block.
    """
    path = Path(skills_file)
    text = path.read_text(encoding="utf-8")
    before = parse_taxonomy(yaml.safe_load(text), str(path))
    if dataset_path in before.datasets:
        return before
    updated = text.rstrip("\n") + f"\n  {dataset_path}: [{', '.join(skills)}]\n"
    after = parse_taxonomy(yaml.safe_load(updated), str(path))
    if after.datasets.get(dataset_path) != tuple(skills):
        raise ValueError(f"{path}: datasets is not the last block; tag {dataset_path} there")
    path.write_text(updated, encoding="utf-8")
    return after
