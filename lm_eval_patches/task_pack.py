"""Read facts from the task pack's YAML files without loading lm-eval (names, groups, hub ids)."""

from __future__ import annotations

from pathlib import Path

import yaml


class _TolerantLoader(yaml.SafeLoader):
    """Reads task YAMLs without resolving lm-eval's ``!function`` tags."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def load_yaml(path: str | Path) -> dict:
    """One task or group YAML as a dict (``!function`` values become None)."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_TolerantLoader) or {}


def pack_index(pack: str | Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``({task: dataset_path}, {group: [member names]})`` of every YAML in the pack."""
    from lm_eval_patches.skills import task_datasets

    groups: dict[str, list[str]] = {}
    for path in sorted(Path(pack).rglob("*.yaml")):
        data = load_yaml(path)
        if data.get("group"):
            groups[str(data["group"])] = [str(t) for t in data.get("task") or []]
    return task_datasets(pack), groups


def dataset_paths(pack: str | Path, names: list[str] | None = None) -> list[str]:
    """Hub ids (``MERA-evaluation/<Name>``) of the named tasks or groups, all when None.

    Raises:
        ValueError: a name is neither a task nor a group of the pack.
    """
    tasks, groups = pack_index(pack)
    if not tasks:
        raise ValueError(f"{pack} holds no task YAMLs (pass the task pack with --include_path)")
    if not names:
        return sorted(set(tasks.values()))
    found: list[str] = []

    def expand(name: str, trail: tuple[str, ...] = ()) -> None:
        if name in tasks:
            found.append(tasks[name])
        elif name in groups and name not in trail:
            for member in groups[name]:
                expand(member, (*trail, name))
        else:
            raise ValueError(f"{name!r} is not a task or group of the task pack {pack}")

    for name in names:
        expand(name)
    return list(dict.fromkeys(found))
