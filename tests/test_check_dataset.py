"""``mera-mm check-dataset``: clean on every fixture dataset, and each failure kind caught on a
broken copy with a message that names the item (split, doc id, field or file).

Broken copies are made in MERA's source layout (test.json / shots.json / samples/), converted
from the fixtures, so each break is one small edit of a record or a file; the hub layout is
covered by the fixtures themselves and by hub copies written with broken records.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, CONTRIBUTED_DATASETS, REPO, write_variant
from dataset_breakers import (
    CASES,
    MEDIA_CHECKS,
    edit_test,
    load_split,
    save_split,
    to_source_layout,
)

from lm_eval_patches.dataset_check.media import MediaRules
from lm_eval_patches.dataset_check.report import ERROR
from lm_eval_patches.dataset_check.run import check_dataset
from lm_eval_patches.fixtures.builder import FixtureOptions, build_fixtures

ORG = "MERA-evaluation"
# The fixtures draw images from 200 px up (small, to keep the suite fast); MERA's floor is 224.
FIXTURE_RULES = MediaRules(min_side=200)
# Warnings the fixtures earn on purpose, because they copy quirks of the published sets.
EXPECTED_WARNINGS = {
    "blur",  # flat PIL drawings have little edge energy
    "near_duplicates",  # pHash of simple drawings can collide
    "duplicates",  # ruHHH items of one group share their picture or clip
    "prompt_ending",  # the science sets end prompts with "Ответ: ", ruMathVQA with a newline
    "placeholders",  # ruTiE keeps <image>/<audio> in turns without media (optional media)
}


@pytest.fixture(scope="module")
def private_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two private fixture datasets as the hub serves them (test golds hidden)."""
    out = tmp_path_factory.mktemp("private-mirror")
    build_fixtures(out, ["ruTiE-Image", "LabTabVQA"], FixtureOptions(private=True))
    return out


def test_every_fixture_dataset_is_clean(mirror: Path) -> None:
    """The session mirror keeps golds everywhere (for local scoring), so its private sets are
    checked as public ones here; the private rule is checked on ``private_mirror``."""
    folders = sorted((mirror / ORG).iterdir())
    contributed = {dataset.split("/")[-1] for dataset in CONTRIBUTED_DATASETS.values()}
    # The 18 MERA datasets, plus those of tasks added with `mera-mm new-task` (checked alike).
    assert len([f for f in folders if f.name not in contributed]) == 18
    assert contributed <= {f.name for f in folders}
    for folder in folders:
        report = check_dataset(folder, access="public", rules=FIXTURE_RULES)
        assert report.layout == "hub"
        assert not report.errors(), (folder.name, report.to_text())
        assert {f.check for f in report.warnings()} <= EXPECTED_WARNINGS, report.to_text()
        assert report.stats["items"]["test"] >= 4 and sum(report.stats["media"].values()) >= 4


def test_private_fixture_sets_are_clean(private_mirror: Path) -> None:
    for folder in sorted((private_mirror / ORG).iterdir()):
        report = check_dataset(folder, rules=FIXTURE_RULES)
        assert report.access == "private"
        assert not report.errors(), report.to_text()


def test_ruhhh_shared_media_and_rutie_optional_media_are_warnings(
    mirror: Path, private_mirror: Path
) -> None:
    hhh = check_dataset(mirror / ORG / "ruHHH-Image", access="public", rules=FIXTURE_RULES)
    assert {f.check for f in hhh.warnings()} >= {"duplicates"}
    tie = check_dataset(private_mirror / ORG / "ruTiE-Image", rules=FIXTURE_RULES)
    optional = [f for f in tie.warnings() if f.check == "placeholders"]
    assert optional and all(f.field == "inputs.image" for f in optional)
    assert tie.failed(strict=True) and not tie.failed()


def test_golds_of_a_private_set_in_hub_layout_fail(mirror: Path) -> None:
    report = check_dataset(mirror / ORG / "LabTabVQA", access="private", rules=FIXTURE_RULES)
    golds = [f for f in report.errors() if f.check == "golds"]
    assert golds and "private set" in golds[0].message and golds[0].split == "test"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """WEIRD (image, 30 test items), ruEnvAQA (audio), CommonVideoQA (video), source layout."""
    hub = tmp_path_factory.mktemp("hub")
    build_fixtures(hub, ["WEIRD"], FixtureOptions(test=30))
    build_fixtures(hub, ["ruEnvAQA", "CommonVideoQA"], FixtureOptions(test=4))
    root = tmp_path_factory.mktemp("source")
    return {
        name: to_source_layout(hub / ORG / name, root / name, "public")
        for name in ("WEIRD", "ruEnvAQA", "CommonVideoQA")
    }


@pytest.mark.parametrize(
    ("dataset", "breaker", "check", "severity", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_broken_copy_is_caught(
    sources: dict[str, Path], tmp_path: Path, dataset, breaker, check, severity, words
) -> None:
    folder = tmp_path / dataset
    shutil.copytree(sources[dataset], folder)
    shutil.copytree(sources["ruEnvAQA"], tmp_path / "ruEnvAQA", dirs_exist_ok=True)
    where = breaker(folder)
    # Record checks need no decoding: skip the media for them (faster, same verdicts).
    report = check_dataset(folder, rules=FIXTURE_RULES, check_media=check in MEDIA_CHECKS)
    hits = [f for f in report.findings if f.check == check and f.severity == severity]
    assert hits, report.to_text()

    def names_the_item(f) -> bool:
        text = f"{f.where()}: {f.message}"
        return (
            all(w in text for w in words)
            and all(getattr(f, k) == where[k] for k in ("split", "doc_id") if k in where)
            and where.get("file", "") in f.message
        )

    assert any(names_the_item(f) for f in hits), (words, where, [str(f) for f in hits])
    assert report.failed(strict=True)
    assert report.failed() == (severity == ERROR)


def test_unbroken_sources_are_clean(sources: dict[str, Path]) -> None:
    for folder in sources.values():
        report = check_dataset(folder, rules=FIXTURE_RULES)
        assert report.layout == "source" and report.access == "public"
        assert not report.errors(), report.to_text()


def test_prompt_index_into_raw_dataset_meta(sources: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "WEIRD"
    shutil.copytree(sources["WEIRD"], folder)
    test = load_split(folder, "test")
    prompt = test["data"][0]["instruction"]
    for record in test["data"]:
        record["instruction"] = 0
    test["data"][1]["instruction"] = 5
    save_split(folder, "test", test)
    shots = load_split(folder, "shots")
    (folder / "raw_dataset_meta.json").write_text(json.dumps({"prompts": [prompt]}), "utf-8")
    report = check_dataset(folder, rules=FIXTURE_RULES)
    bad = [f for f in report.errors() if f.check == "fields"]
    assert [f.doc_id for f in bad] == [test["data"][1]["meta"]["id"]], report.to_text()
    assert "prompt index 5" in bad[0].message and "1 prompts" in bad[0].message
    assert shots["data"]  # shots keep their prompt text: both forms are read


def test_hub_copy_with_broken_record(tmp_path: Path) -> None:
    def unused_field(record: dict) -> None:
        record["inputs"]["question"] = record["inputs"]["question"]
        record["instruction"] = record["instruction"].replace("{question}", "вопрос")

    ids = write_variant("WEIRD", {2: unused_field}, tmp_path)
    report = check_dataset(tmp_path / ORG / "WEIRD", rules=FIXTURE_RULES)
    hits = [f for f in report.errors() if f.check == "placeholders"]
    assert [(f.doc_id, f.field) for f in hits] == [(ids[2], "inputs.question")]


def test_cli_text_and_json(
    sources: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from lm_eval_patches.cli import main

    assert main(["check-dataset", "--min-side", "200", str(sources["ruEnvAQA"])]) == 0
    out = capsys.readouterr().out
    assert "OK: 0 error(s)" in out and "dataset ruEnvAQA (source layout" in out
    assert main(["check-dataset", str(tmp_path / "nothing-here")]) == 2
    assert "not a folder" in capsys.readouterr().err
    folder = tmp_path / "WEIRD"
    shutil.copytree(sources["WEIRD"], folder)
    edit_test(0, lambda r: r.update(outputs="Z"))(folder)
    proc = subprocess.run(
        [str(BIN / "mera-mm"), "check-dataset", "--json", "--no-media", str(folder)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["ok"] is False and payload["by_check"] == {"options": 1}
    (finding,) = payload["findings"]
    assert finding["split"] == "test" and finding["field"] == "outputs"


def test_source_layout_with_domain_folders(sources: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "ScienceSet"
    for domain in ("biology", "physics"):
        shutil.copytree(sources["WEIRD"], root / domain)
    physics = load_split(root / "physics", "test")
    physics["data"][1]["meta"]["id"] = physics["data"][0]["meta"]["id"]
    save_split(root / "physics", "test", physics)
    report = check_dataset(root, check_media=False)
    assert report.layout == "source" and report.stats["configs"] == ["biology", "physics"]
    assert report.stats["items"] == {"shots": 6, "test": 60}
    (dup,) = report.errors()  # ids repeat across domains (configs) freely, not within one
    assert dup.check == "ids" and dup.config == "physics"


def test_a_mirror_folder_is_checked_dataset_by_dataset(mirror: Path, capsys) -> None:
    """`mera-mm check-dataset MIRROR` (as MERA_DATA_DIR is laid out) checks each dataset on its
    own: ids repeat across datasets, never within one, so nothing is flagged for that; a
    private set built with its golds (no --private) is not taken for a leak."""
    from lm_eval_patches.cli import main as cli_main

    assert cli_main(["check-dataset", str(mirror), "--no-media"]) == 0
    out = capsys.readouterr().out
    assert out.count("\ndataset ") + out.startswith("dataset ") == 18 + len(CONTRIBUTED_DATASETS)
    assert "FAILED" not in out and "used 18 times" not in out
