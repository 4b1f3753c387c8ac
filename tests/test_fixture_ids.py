"""Fixture ids: one id space per dataset across its configs, as the hub has it (the submission
concatenates a science set's configs into one file keyed by id)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from lm_eval_patches.fixtures.builder import FixtureOptions, all_specs, first_ids


def _ids(folder: Path, split: str) -> list[int]:
    ids = []
    for path in sorted(folder.rglob(f"{split}-*.parquet")):
        ids += [m["id"] for m in pq.read_table(path, columns=["meta"]).column("meta").to_pylist()]
    return ids


def test_each_dataset_is_one_id_space(mirror: Path) -> None:
    specs = all_specs()
    assert len(specs) == 18
    for spec in specs:
        folder = mirror / "MERA-evaluation" / spec.name
        shots, test = _ids(folder, "shots"), _ids(folder, "test")
        configs = len(spec.configs or [None])
        assert len(test) == spec.test * configs, spec.name
        assert len(set(shots + test)) == len(shots) + len(test), f"{spec.name}: repeated ids"
        # Shots first, then the test items, numbered from 1 without gaps.
        assert sorted(shots + test) == list(range(1, len(shots) + len(test) + 1)), spec.name
        assert max(shots) < min(test), spec.name


def test_first_ids_are_deterministic() -> None:
    (spec,) = [s for s in all_specs() if s.name == "SchoolScienceVQA"]
    starts = first_ids(spec, FixtureOptions(shots=2, test=5))
    assert starts["biology"] == {"shots": 1, "test": 15}
    assert starts["chemistry"] == {"shots": 3, "test": 20}
    assert starts == first_ids(spec, FixtureOptions(shots=2, test=5))
