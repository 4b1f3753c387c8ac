"""The LOAD_* switches and media forms on real fixture media (JPEG/PNG, WAV, MP4 and MOV).

Requests are built by the tasks themselves (``construct_requests``), so these checks see what a
third-party backend receives: the switch's form, with the real MIME type and extension.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from media_samples import (
    make_counter_video,
    make_flac,
    make_mp3,
    make_ogg,
    make_tone_wav,
    tone,
)
from PIL import Image

from lm_eval_patches.failures import failed_at_build
from lm_eval_patches.media.forms import LOAD_SWITCHES, load_mode, materialise
from lm_eval_patches.media.mime import sniff_mime
from lm_eval_patches.media.ref import MediaRef

REPO = Path(__file__).resolve().parents[1]
TASKS = ("weird", "ruenvaqa", "ruhhh_video")
ENV_KNOBS = (
    *LOAD_SWITCHES,
    "HARNESS_RESIZE_IMAGES",
    "INPUT_IMAGE_WIDTH",
    "INPUT_IMAGE_HEIGHT",
    "INPUT_IMAGE_MAX_SIDE",
    "LM_EVAL_MEDIA_DIR",
)
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "audio/wav": ".wav",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
}


@pytest.fixture(scope="module")
def tasks(mirror: Path) -> dict:
    """WEIRD (JPEG and PNG images), ruEnvAQA (WAV) and ruHHH-Video (MP4 and one MOV group)."""
    import lm_eval.tasks

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERA_DATA_DIR", str(mirror))
        manager = lm_eval.tasks.TaskManager(
            include_path=str(REPO / "multimodal_tasks"), include_defaults=False
        )
        return manager.load(list(TASKS))["tasks"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_KNOBS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _docs(tasks: dict, name: str) -> list[dict]:
    return list(tasks[name].test_docs())


def _media_of(tasks: dict, name: str, doc: dict) -> list:
    """The media values of ``doc``'s request, built as lm-eval builds it."""
    task = tasks[name]
    instance = task.construct_requests(doc, task.doc_to_text(doc), metadata=(name, 0, 1))
    assert not failed_at_build(instance.args), instance.args[2]
    (values,) = instance.args[2].values()  # each of these tasks has one media kind
    return values


def _descriptors(doc: dict) -> list[dict]:
    return [v for v in doc["inputs"].values() if isinstance(v, dict) and v.get("sha256")]


def _all(tasks: dict):
    """(task, doc, descriptor, request value) for every test doc of the three tasks."""
    for name in TASKS:
        for doc in _docs(tasks, name):
            (descriptor,) = _descriptors(doc)
            (value,) = _media_of(tasks, name, doc)
            yield name, doc, descriptor, value


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- no switch: lazy references ---------------------------------------------------------------
def test_without_a_switch_requests_carry_lazy_refs(tasks: dict) -> None:
    for _, _, descriptor, value in _all(tasks):
        assert isinstance(value, MediaRef)
        assert (value.kind, value.sha256, value.mime) == (
            descriptor["kind"],
            descriptor["sha256"],
            descriptor["mime"],
        )


def test_third_party_backends_get_concrete_media_by_default(
    tasks: dict, clean_env: pytest.MonkeyPatch
) -> None:
    """A CLI run with a backend that is not ours gets the original's default (LOAD_OBJECT)."""
    from lm_eval_patches.settings import RUN_OPTIONS

    clean_env.setattr(RUN_OPTIONS, "backend_resolves_media", False)
    values = {d["kind"]: v for _, _, d, v in _all(tasks)}
    assert isinstance(values["image"], Image.Image)
    assert set(values["audio"]) == {"array", "sampling_rate", "path"}
    clean_env.setenv("LOAD_BASE64", "1")  # an explicit switch still wins
    assert all(set(v) == {"url"} for _, _, _, v in _all(tasks))


def test_fixture_media_cover_every_form(tasks: dict) -> None:
    mimes = {d["mime"] for _, _, d, _ in _all(tasks)}
    assert mimes == set(EXTENSIONS), mimes


# -- LOAD_BASE64 ------------------------------------------------------------------------------
def test_base64_urls_carry_the_real_mime(tasks: dict, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LOAD_BASE64", "1")
    seen = set()
    for _, _, descriptor, value in _all(tasks):
        assert set(value) == {"url"}
        header, payload = value["url"].split(",", 1)
        assert header == f"data:{descriptor['mime']};base64"
        data = base64.b64decode(payload, validate=True)
        assert _sha(data) == descriptor["sha256"]
        assert sniff_mime(data) == descriptor["mime"]
        seen.add(header)
    # JPEGs are not labelled PNG, and the MOV clip is not labelled MP4.
    assert {"data:image/jpeg;base64", "data:image/png;base64"} <= seen
    assert {"data:video/quicktime;base64", "data:video/mp4;base64"} <= seen
    assert "data:audio/wav;base64" in seen


def test_ruhhh_video_mov_group_is_quicktime(tasks: dict, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LOAD_BASE64", "1")
    mov = [d for d in _docs(tasks, "ruhhh_video") if d["inputs"]["video"]["path"].endswith(".mov")]
    assert mov, "the ruHHH-Video fixture has a .mov group"
    for doc in mov:
        (value,) = _media_of(tasks, "ruhhh_video", doc)
        assert value["url"].startswith("data:video/quicktime;base64,")


# -- LOAD_FILES -------------------------------------------------------------------------------
def test_files_are_content_addressed_with_real_extensions(
    tasks: dict, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("LOAD_FILES", "1")
    clean_env.setenv("LM_EVAL_MEDIA_DIR", str(tmp_path))
    root = tmp_path / "lm_eval_media"
    stamps = {}
    for _, _, descriptor, value in _all(tasks):
        kind = descriptor["kind"]
        assert set(value) == {"type", kind} and value["type"] == kind
        path = Path(value[kind])
        assert path.is_absolute() and path.parent == (root / f"{kind}s").resolve()
        assert path.name == f"{kind}-{descriptor['sha256']}{EXTENSIONS[descriptor['mime']]}"
        assert _sha(path.read_bytes()) == descriptor["sha256"]
        stamps[path] = path.stat().st_mtime_ns
    suffixes = {p.suffix for p in stamps}
    assert suffixes == {".jpg", ".png", ".wav", ".mp4", ".mov"}
    # One file per distinct content (ruHHH-Video groups share a clip), nothing else.
    written = {p.resolve() for p in root.rglob("*") if p.is_file()}
    assert written == set(stamps)
    clips = {d["inputs"]["video"]["sha256"] for d in _docs(tasks, "ruhhh_video")}
    assert len(list((root / "videos").iterdir())) == len(clips) < len(_docs(tasks, "ruhhh_video"))
    # A second pass writes nothing again.
    for _ in _all(tasks):
        pass
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_existing_file_is_not_read_again(tasks: dict, tmp_path: Path) -> None:
    doc = _docs(tasks, "weird")[0]
    (ref,) = tasks["weird"].doc_media(doc)
    first = ref.as_file(tmp_path)

    def unreadable() -> bytes:
        raise AssertionError("the bytes were read again")

    same = MediaRef(ref.kind, ref.sha256, ref.mime, ref["name"], unreadable)
    assert same.as_file(tmp_path) == first


# -- LOAD_BYTES -------------------------------------------------------------------------------
def test_bytes_are_the_exact_source(tasks: dict, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LOAD_BYTES", "1")
    for _, _, descriptor, value in _all(tasks):
        assert isinstance(value, bytes)
        assert _sha(value) == descriptor["sha256"]


# -- LOAD_OBJECT ------------------------------------------------------------------------------
def test_objects_are_rgb_images_audio_dicts_and_video_bytes(
    tasks: dict, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("LOAD_OBJECT", "1")
    kinds = set()
    for _, _, descriptor, value in _all(tasks):
        kind = descriptor["kind"]
        kinds.add(kind)
        if kind == "image":
            assert isinstance(value, Image.Image) and value.mode == "RGB"
        elif kind == "audio":
            assert set(value) == {"array", "sampling_rate", "path"}
            assert value["path"] == descriptor["path"]
            assert isinstance(value["array"], np.ndarray) and value["array"].size > 0
            assert np.isfinite(value["array"]).all()
        else:
            assert isinstance(value, bytes) and _sha(value) == descriptor["sha256"]
    assert kinds == {"image", "audio", "video"}


def test_object_forms_match_the_source_media(tasks: dict, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LOAD_OBJECT", "1")
    for doc in _docs(tasks, "weird")[:3]:
        (ref,) = tasks["weird"].doc_media(doc)
        (img,) = _media_of(tasks, "weird", doc)
        with Image.open(io.BytesIO(ref.read_bytes())) as original:
            assert img.size == original.size
    for doc in _docs(tasks, "ruenvaqa")[:3]:
        (ref,) = tasks["ruenvaqa"].doc_media(doc)
        (audio,) = _media_of(tasks, "ruenvaqa", doc)
        with wave.open(io.BytesIO(ref.read_bytes())) as wav:
            rate, frames = wav.getframerate(), wav.getnframes()
        assert audio["sampling_rate"] == rate  # the original rate: no resampling asked
        assert audio["array"].shape[-1] == frames


# -- switches together, resizing --------------------------------------------------------------
def test_two_switches_at_once_are_an_error(tasks: dict, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError) as info:
        load_mode({"LOAD_BYTES": "1", "LOAD_FILES": "1"})
    for name in LOAD_SWITCHES:
        assert name in str(info.value)
    assert load_mode({"LOAD_BYTES": "1", "LOAD_FILES": "0"}) == "LOAD_BYTES"
    assert load_mode({}) is None

    clean_env.setenv("LOAD_OBJECT", "1")
    clean_env.setenv("LOAD_BASE64", "1")
    doc = _docs(tasks, "weird")[0]
    with pytest.raises(ValueError) as info:
        _media_of(tasks, "weird", doc)
    assert all(name in str(info.value) for name in LOAD_SWITCHES)


def test_resize_to_max_side(tasks: dict, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HARNESS_RESIZE_IMAGES", "1")
    clean_env.setenv("INPUT_IMAGE_MAX_SIDE", "64")
    # Without a LOAD_* switch the references stay lazy and untouched.
    doc = _docs(tasks, "weird")[0]
    (lazy,) = _media_of(tasks, "weird", doc)
    assert lazy.sha256 == doc["inputs"]["image"]["sha256"]

    clean_env.setenv("LOAD_OBJECT", "1")
    for doc in _docs(tasks, "weird"):
        (ref,) = tasks["weird"].doc_media(doc)
        (img,) = _media_of(tasks, "weird", doc)
        with Image.open(io.BytesIO(ref.read_bytes())) as original:
            w, h = original.size
        assert max(img.size) == 64
        assert abs(img.size[0] / img.size[1] - w / h) < 0.05

    clean_env.setenv("LOAD_OBJECT", "0")
    clean_env.setenv("LOAD_BASE64", "1")
    families = set()
    for doc in _docs(tasks, "weird"):
        (value,) = _media_of(tasks, "weird", doc)
        header, payload = value["url"].split(",", 1)
        # Re-encoded pixels keep their family (JPEG stays JPEG, else PNG), and say so.
        expected = "image/jpeg" if doc["inputs"]["image"]["mime"] == "image/jpeg" else "image/png"
        assert header == f"data:{expected};base64"
        families.add(expected)
        with Image.open(io.BytesIO(base64.b64decode(payload))) as small:
            assert max(small.size) == 64 and sniff_mime(base64.b64decode(payload)) == expected
    assert families == {"image/jpeg", "image/png"}


def test_materialise_leaves_audio_and_video_unresized(tasks: dict) -> None:
    sizes = {"width": None, "height": None, "max_side": 64}
    for name in ("ruenvaqa", "ruhhh_video"):
        (ref,) = tasks[name].doc_media(_docs(tasks, name)[0])
        assert _sha(materialise(ref, "LOAD_BYTES", sizes)) == ref.sha256


# -- MediaRef itself --------------------------------------------------------------------------
def _unreadable_ref() -> MediaRef:
    def loader() -> bytes:
        raise AssertionError("the loader must not be called")

    return MediaRef("image", "ab" * 32, "image/jpeg", "samples/x.jpg", loader, "task t, doc 1")


def test_media_ref_serialises_without_loading() -> None:
    ref = _unreadable_ref()
    assert json.loads(json.dumps(ref)) == {
        "kind": "image",
        "sha256": "ab" * 32,
        "mime": "image/jpeg",
        "name": "samples/x.jpg",
    }
    request_media = {"visual": [ref, ref]}
    assert json.loads(json.dumps(request_media))["visual"][1]["sha256"] == "ab" * 32


def test_media_ref_copies_are_the_same_object() -> None:
    ref = _unreadable_ref()
    assert copy.deepcopy(ref) is ref and copy.copy(ref) is ref
    nested = copy.deepcopy({"visual": [ref]})
    assert nested["visual"][0] is ref
    assert hash(ref) == hash(MediaRef("image", "ab" * 32, None, None, lambda: b""))


def test_request_refs_serialise_with_their_facts(tasks: dict) -> None:
    doc = _docs(tasks, "ruhhh_video")[0]
    (ref,) = _media_of(tasks, "ruhhh_video", doc)
    facts = json.loads(json.dumps(ref))
    assert facts == {
        "kind": "video",
        "sha256": doc["inputs"]["video"]["sha256"],
        "mime": "video/mp4",
        "name": doc["inputs"]["video"]["path"],
    }


# -- MIME sniffing ----------------------------------------------------------------------------
def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


def _without_id3(data: bytes) -> bytes:
    assert data.startswith(b"ID3")
    size = 0
    for byte in data[6:10]:  # syncsafe: 7 bits per byte
        size = (size << 7) | byte
    return data[10 + size :]


@pytest.fixture(scope="module")
def samples() -> dict[str, bytes]:
    audio = tone(440.0, 16000, 0.2)
    mp3 = make_mp3(audio, 16000)
    return {
        "image/png": _image("PNG"),
        "image/jpeg": _image("JPEG"),
        "image/gif": _image("GIF"),
        "image/webp": _image("WEBP"),
        "audio/wav": make_tone_wav(440.0, 16000, 0.2),
        "audio/flac": make_flac(audio, 16000),
        "audio/ogg": make_ogg(audio, 16000),
        "audio/mpeg": mp3,
        "audio/mpeg (no ID3)": _without_id3(mp3),
        "video/mp4": make_counter_video(0.2, 10, 64, 64, "mp4"),
        "video/quicktime": make_counter_video(0.2, 10, 64, 64, "mov"),
        "video/webm": make_counter_video(0.2, 10, 64, 64, "webm"),
        "video/x-matroska": make_counter_video(0.2, 10, 64, 64, "mkv"),
    }


def test_sniff_mime_on_real_encoder_output(samples: dict[str, bytes]) -> None:
    for expected, data in samples.items():
        assert sniff_mime(data) == expected.split(" ")[0], expected


def test_sniff_mime_unknown_and_refs_from_bytes(samples: dict[str, bytes]) -> None:
    assert sniff_mime(b"") is None
    assert sniff_mime(b"plain text, not media") is None
    ref = MediaRef.from_bytes("video", samples["video/quicktime"], "clip.mov")
    assert ref.mime == "video/quicktime" and ref.sha256 == _sha(samples["video/quicktime"])
    assert ref.as_data_url().startswith("data:video/quicktime;base64,")


def test_duration_is_exposed_for_audio_and_video() -> None:
    import media_samples

    audio = MediaRef.from_bytes("audio", media_samples.make_tone_wav(1000, 44100, 1.5))
    video = MediaRef.from_bytes("video", media_samples.make_counter_video(2, 10, 64, 48))
    assert abs(audio.duration_s() - 1.5) < 1e-3
    assert abs(video.duration_s() - 2.0) < 0.11
    with pytest.raises(ValueError, match="no duration"):
        MediaRef.from_bytes("image", b"\x89PNG\r\n\x1a\n").duration_s()
