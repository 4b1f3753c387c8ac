"""``mera-mm check-dataset``: clean on every fixture dataset, and each failure kind caught on a
broken copy with a message that names the item (split, doc id, field or file).

Broken copies are made in MERA's source layout (test.json / shots.json / samples/), converted
from the fixtures, so each break is one small edit of a record or a file; the hub layout is
covered by the fixtures themselves and by hub copies written with broken records.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import BIN, REPO, write_variant

from lm_eval_patches.dataset_check.media import MediaRules
from lm_eval_patches.dataset_check.report import ERROR, WARNING
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
    assert len(folders) == 18
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
    report = check_dataset(mirror / ORG / "LabTabVQA", rules=FIXTURE_RULES)
    golds = [f for f in report.errors() if f.check == "golds"]
    assert golds and "private set" in golds[0].message and golds[0].split == "test"


# -- source layout ----------------------------------------------------------------------------
def to_source_layout(hub_dir: Path, out: Path, access: str) -> Path:
    """Write a hub-layout fixture dataset as MERA's source layout (files under samples/)."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True)
    for split in ("shots", "test"):
        records = []
        for path in sorted(hub_dir.rglob(f"{split}-*.parquet")):
            for record in pq.read_table(path).to_pylist():
                for key, value in record["inputs"].items():
                    if isinstance(value, dict) and value.get("bytes"):
                        target = out / value["path"]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(value["bytes"])
                        record["inputs"][key] = value["path"]
                records.append(record)
        payload = {"access": access, "data": records} if split == "test" else {"data": records}
        (out / f"{split}.json").write_text(json.dumps(payload, ensure_ascii=False), "utf-8")
    return out


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


def _load(folder: Path, split: str) -> dict:
    return json.loads((folder / f"{split}.json").read_text("utf-8"))


def _save(folder: Path, split: str, payload: dict) -> None:
    (folder / f"{split}.json").write_text(json.dumps(payload, ensure_ascii=False), "utf-8")


def edit_test(index: int, change: Callable[[dict], None]) -> Callable[[Path], dict]:
    """A break that edits test record ``index``; returns what the finding must name."""

    def apply(folder: Path) -> dict:
        payload = _load(folder, "test")
        record = payload["data"][index]
        change(record)
        _save(folder, "test", payload)
        return {"split": "test", "doc_id": record["meta"]["id"]}

    return apply


def _image(folder: Path, index: int = 0) -> Path:
    return folder / _load(folder, "test")["data"][index]["inputs"]["image"]


def _replace_image(index: int, make: Callable[[Path], bytes]) -> Callable[[Path], dict]:
    def apply(folder: Path) -> dict:
        path = _image(folder, index)
        path.write_bytes(make(path))
        return {"split": "test", "doc_id": _load(folder, "test")["data"][index]["meta"]["id"]}

    return apply


def _pil(size: tuple[int, int], fmt: str = "PNG", blur: float = 0.0) -> Callable[[Path], bytes]:
    def make(_: Path) -> bytes:
        from PIL import Image, ImageDraw, ImageFilter

        img = Image.new("RGB", size, (240, 240, 240))
        draw = ImageDraw.Draw(img)
        for i in range(0, size[0], 16):
            draw.line([(i, 0), (size[0] - i, size[1])], fill=(i % 255, 40, 200), width=3)
        if blur:
            img = img.filter(ImageFilter.GaussianBlur(blur))
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        return buf.getvalue()

    return make


def _near_copy_of_shot(folder: Path) -> dict:
    """Test image 1 becomes a re-encoded (not byte-equal) copy of shot 0's image."""
    from PIL import Image

    shot = _load(folder, "shots")["data"][0]["inputs"]["image"]
    img = Image.open(folder / shot).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=60)
    _image(folder, 1).write_bytes(buf.getvalue())
    return {"split": "test", "doc_id": _load(folder, "test")["data"][1]["meta"]["id"]}


def _shot_repeats_test(folder: Path) -> dict:
    shots, test = _load(folder, "shots"), _load(folder, "test")
    copy = json.loads(json.dumps(test["data"][2]))
    copy["meta"]["id"] = 999
    shots["data"].append(copy)
    _save(folder, "shots", shots)
    return {"split": "test", "doc_id": test["data"][2]["meta"]["id"]}


def _shot_reuses_test_media(folder: Path) -> dict:
    shots, test = _load(folder, "shots"), _load(folder, "test")
    shots["data"][0]["inputs"]["image"] = test["data"][3]["inputs"]["image"]
    _save(folder, "shots", shots)
    return {"split": "test", "doc_id": test["data"][3]["meta"]["id"]}


def _duplicate_id(folder: Path) -> dict:
    shots, test = _load(folder, "shots"), _load(folder, "test")
    test["data"][4]["meta"]["id"] = shots["data"][0]["meta"]["id"]
    _save(folder, "test", test)
    return {"doc_id": shots["data"][0]["meta"]["id"]}


def _all_golds_a(folder: Path) -> dict:
    """Every test item's right option moved to A: a set where "always A" scores 100%."""
    test = _load(folder, "test")
    for record in test["data"]:
        inputs, gold = record["inputs"], record["outputs"]
        if gold == "B":
            inputs["option_a"], inputs["option_b"] = inputs["option_b"], inputs["option_a"]
        record["outputs"] = "A"
    _save(folder, "test", test)
    return {"split": "test"}


def _set_access(access: str) -> Callable[[Path], dict]:
    def apply(folder: Path) -> dict:
        test = _load(folder, "test")
        test["access"] = access
        _save(folder, "test", test)
        return {"split": "test", "doc_id": test["data"][0]["meta"]["id"]}

    return apply


def _rename_image_key(number: int) -> Callable[[Path], dict]:
    def change(record: dict) -> None:
        record["inputs"][f"image_{number}"] = record["inputs"].pop("image")
        record["instruction"] = record["instruction"].replace("<image>", f"<image_{number}>")

    return edit_test(0, change)


def _drop_option_b(record: dict) -> None:
    record["inputs"].pop("option_b")
    record["inputs"]["option_c"] = "третий"
    record["instruction"] = record["instruction"].replace("{option_b}", "{option_c}")


def _audio_clip(seconds: float) -> Callable[[Path], dict]:
    def apply(folder: Path) -> dict:
        import numpy as np
        import soundfile as sf

        record = _load(folder, "test")["data"][0]
        buf = io.BytesIO()
        sf.write(buf, np.zeros(int(16000 * seconds), dtype=np.float32), 16000, format="WAV")
        (folder / record["inputs"]["audio"]).write_bytes(buf.getvalue())
        return {"split": "test", "doc_id": record["meta"]["id"]}

    return apply


def _truncate_media(key: str, keep: int) -> Callable[[Path], dict]:
    def apply(folder: Path) -> dict:
        record = _load(folder, "test")["data"][0]
        path = folder / record["inputs"][key]
        path.write_bytes(path.read_bytes()[:keep])
        return {"split": "test", "doc_id": record["meta"]["id"], "file": record["inputs"][key]}

    return apply


def _audio_as_video(folder: Path) -> dict:
    audio_source = next((folder.parent / "ruEnvAQA" / "samples").iterdir())
    record = _load(folder, "test")["data"][0]
    (folder / record["inputs"]["video"]).write_bytes(audio_source.read_bytes())
    return {"split": "test", "doc_id": record["meta"]["id"]}


def _empty_test(folder: Path) -> dict:
    _save(folder, "test", {"access": "public", "data": []})
    return {"split": "test"}


MEDIA_CHECKS = {
    "unreadable",
    "format",
    "resolution",
    "blur",
    "near_duplicates",
    "duration",
    "shots",
}
# (case id, dataset, break, check, severity, words the message must contain)
CASES = [
    ("missing-field", "WEIRD", edit_test(0, lambda r: r.pop("outputs")), "fields", ERROR,
     ["missing field 'outputs'"]),
    ("id-type", "WEIRD", edit_test(1, lambda r: r["meta"].update(id="7")), "fields", ERROR,
     ["meta.id must be an int"]),
    ("slot-without-input", "WEIRD",
     edit_test(2, lambda r: r["inputs"].update(topic=r["inputs"].pop("question"))),
     "placeholders", ERROR, ["slot {question} but inputs has no text field"]),
    ("media-slot-missing", "WEIRD",
     edit_test(3, lambda r: r.update(instruction=r["instruction"].replace("<image>", ""))),
     "placeholders", ERROR, ["0 bare <image> slot(s) for 1 image field"]),
    ("numbered-key-gap", "WEIRD", _rename_image_key(2), "media_keys", ERROR,
     ["image_1..image_1", "image_2"]),
    ("option-gap", "WEIRD", edit_test(4, _drop_option_b), "options", ERROR,
     ["no gaps", "option_c"]),
    ("gold-not-an-option", "WEIRD", edit_test(5, lambda r: r.update(outputs="D")), "options",
     ERROR, ["gold 'D'", "(A, B)"]),
    ("prompt-ending", "WEIRD",
     edit_test(6, lambda r: r.update(instruction=r["instruction"] + "\n")), "prompt_ending",
     WARNING, ["ends with whitespace"]),
    ("duplicate-id", "WEIRD", _duplicate_id, "ids", ERROR, ["used 2 times"]),
    ("shot-repeats-test", "WEIRD", _shot_repeats_test, "shots", ERROR, ["shot 999 repeats"]),
    ("shot-reuses-media", "WEIRD", _shot_reuses_test_media, "shots", ERROR,
     ["shots must not reuse test media"]),
    ("private-with-golds", "WEIRD", _set_access("private"), "golds", ERROR,
     ["private set: 30 test item(s) carry golds"]),
    ("public-without-gold", "WEIRD", edit_test(7, lambda r: r.update(outputs="")), "golds",
     ERROR, ["public set: 1 test item(s) have no gold"]),
    ("unbalanced-letters", "WEIRD", _all_golds_a, "balance", ERROR, ["A: 30", "chi-square"]),
    ("empty-test", "WEIRD", _empty_test, "fields", ERROR, ["test split is empty"]),
    ("unreadable-image", "WEIRD", _truncate_media("image", 300), "unreadable", ERROR,
     ["cannot"]),
    ("missing-file", "WEIRD",
     edit_test(8, lambda r: r["inputs"].update(image="samples/nope.png")), "unreadable",
     ERROR, ["samples/nope.png not found"]),
    ("image-format", "WEIRD", _replace_image(9, _pil((400, 300), "GIF")), "format", ERROR,
     ["image/gif", "PNG and JPEG"]),
    ("one-side-too-small", "WEIRD", _replace_image(10, _pil((1200, 120))), "resolution",
     ERROR, ["1200x120"]),
    ("one-side-too-large", "WEIRD", _replace_image(11, _pil((4000, 600))), "resolution",
     ERROR, ["4000x600"]),
    ("blur", "WEIRD", _replace_image(12, _pil((640, 480), blur=12)), "blur", WARNING,
     ["variance of the Laplacian"]),
    ("near-duplicate", "WEIRD", _near_copy_of_shot, "near_duplicates", WARNING,
     ["looks like shots doc", "pHash distance"]),
    ("audio-too-short", "ruEnvAQA", _audio_clip(0.05), "duration", ERROR,
     ["0.05 s, audio must last 0.1..600 s"]),
    ("audio-unreadable", "ruEnvAQA", _truncate_media("audio", 20), "unreadable", ERROR,
     ["audio"]),
    ("video-without-video-stream", "CommonVideoQA", _audio_as_video, "format", ERROR,
     ["inputs.video must hold video", "audio/"]),
    ("video-unreadable", "CommonVideoQA", _truncate_media("video", 2000), "unreadable", ERROR,
     ["video"]),
]  # fmt: skip


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
    test = _load(folder, "test")
    prompt = test["data"][0]["instruction"]
    for record in test["data"]:
        record["instruction"] = 0
    test["data"][1]["instruction"] = 5
    _save(folder, "test", test)
    shots = _load(folder, "shots")
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
