"""Broken copies of a dataset in MERA's source layout, one per failure kind of check-dataset.

``to_source_layout`` writes a hub-layout fixture dataset as test.json / shots.json / samples/;
each breaker edits one record or file of such a copy and returns what the finding must name
(split, doc id, file). ``CASES`` pairs each breaker with the check, severity and words expected.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

from lm_eval_patches.dataset_check.report import ERROR, WARNING


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


def load_split(folder: Path, split: str) -> dict:
    return json.loads((folder / f"{split}.json").read_text("utf-8"))


def save_split(folder: Path, split: str, payload: dict) -> None:
    (folder / f"{split}.json").write_text(json.dumps(payload, ensure_ascii=False), "utf-8")


def edit_test(index: int, change: Callable[[dict], None]) -> Callable[[Path], dict]:
    """A break that edits test record ``index``; returns what the finding must name."""

    def apply(folder: Path) -> dict:
        payload = load_split(folder, "test")
        record = payload["data"][index]
        change(record)
        save_split(folder, "test", payload)
        return {"split": "test", "doc_id": record["meta"]["id"]}

    return apply


def _image(folder: Path, index: int = 0) -> Path:
    return folder / load_split(folder, "test")["data"][index]["inputs"]["image"]


def _replace_image(index: int, make: Callable[[Path], bytes]) -> Callable[[Path], dict]:
    def apply(folder: Path) -> dict:
        path = _image(folder, index)
        path.write_bytes(make(path))
        return {"split": "test", "doc_id": load_split(folder, "test")["data"][index]["meta"]["id"]}

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

    shot = load_split(folder, "shots")["data"][0]["inputs"]["image"]
    img = Image.open(folder / shot).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=60)
    _image(folder, 1).write_bytes(buf.getvalue())
    return {"split": "test", "doc_id": load_split(folder, "test")["data"][1]["meta"]["id"]}


def _shot_repeats_test(folder: Path) -> dict:
    shots, test = load_split(folder, "shots"), load_split(folder, "test")
    copy = json.loads(json.dumps(test["data"][2]))
    copy["meta"]["id"] = 999
    shots["data"].append(copy)
    save_split(folder, "shots", shots)
    return {"split": "test", "doc_id": test["data"][2]["meta"]["id"]}


def _shot_reuses_test_media(folder: Path) -> dict:
    shots, test = load_split(folder, "shots"), load_split(folder, "test")
    shots["data"][0]["inputs"]["image"] = test["data"][3]["inputs"]["image"]
    save_split(folder, "shots", shots)
    return {"split": "test", "doc_id": test["data"][3]["meta"]["id"]}


def _duplicate_id(folder: Path) -> dict:
    shots, test = load_split(folder, "shots"), load_split(folder, "test")
    test["data"][4]["meta"]["id"] = shots["data"][0]["meta"]["id"]
    save_split(folder, "test", test)
    return {"doc_id": shots["data"][0]["meta"]["id"]}


def _all_golds_a(folder: Path) -> dict:
    """Every test item's right option moved to A: a set where "always A" scores 100%."""
    test = load_split(folder, "test")
    for record in test["data"]:
        inputs, gold = record["inputs"], record["outputs"]
        if gold == "B":
            inputs["option_a"], inputs["option_b"] = inputs["option_b"], inputs["option_a"]
        record["outputs"] = "A"
    save_split(folder, "test", test)
    return {"split": "test"}


def _set_access(access: str) -> Callable[[Path], dict]:
    def apply(folder: Path) -> dict:
        test = load_split(folder, "test")
        test["access"] = access
        save_split(folder, "test", test)
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

        record = load_split(folder, "test")["data"][0]
        buf = io.BytesIO()
        sf.write(buf, np.zeros(int(16000 * seconds), dtype=np.float32), 16000, format="WAV")
        (folder / record["inputs"]["audio"]).write_bytes(buf.getvalue())
        return {"split": "test", "doc_id": record["meta"]["id"]}

    return apply


def _truncate_media(key: str, keep: int) -> Callable[[Path], dict]:
    def apply(folder: Path) -> dict:
        record = load_split(folder, "test")["data"][0]
        path = folder / record["inputs"][key]
        path.write_bytes(path.read_bytes()[:keep])
        return {"split": "test", "doc_id": record["meta"]["id"], "file": record["inputs"][key]}

    return apply


def _audio_as_video(folder: Path) -> dict:
    audio_source = next((folder.parent / "ruEnvAQA" / "samples").iterdir())
    record = load_split(folder, "test")["data"][0]
    (folder / record["inputs"]["video"]).write_bytes(audio_source.read_bytes())
    return {"split": "test", "doc_id": record["meta"]["id"]}


def _empty_test(folder: Path) -> dict:
    save_split(folder, "test", {"access": "public", "data": []})
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
    ("misnamed-media-key", "WEIRD",
     edit_test(9, lambda r: r["inputs"].update(picture=r["inputs"].pop("image"))),
     "media_keys", ERROR, ["inputs.picture holds media"]),
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
