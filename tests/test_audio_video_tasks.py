"""Audio and video tasks end to end: fixtures -> lm-eval (in-process) -> results and samples.

One module-scoped run covers the 7 audio/video tasks with the mera-baseline backend on
fixtures where one AQUARIA test doc is broken on purpose (its second audio has no bytes):
that doc must fail alone, with a message naming task, doc and field, and the run must go on.
"""

from __future__ import annotations

import io
import math
import random
import wave
from pathlib import Path

import datasets
import pytest
from conftest import AUDIO_TASKS, STANDALONE_TASKS, VIDEO_TASKS

import lm_eval_patches
from lm_eval_patches.failures import FAILURES, failure_reason
from lm_eval_patches.fixtures.audio_sets import (
    SINGLE_AUDIO_INDEX,
    aquaria_missing_second_audio,
    aquaria_spec_missing_second_audio,
)
from lm_eval_patches.fixtures.builder import (
    FixtureOptions,
    build_fixtures,
    build_records,
    select_specs,
    write_dataset,
)
from lm_eval_patches.fixtures.clips import make_clip, read_frame_index, video_cell, video_feature
from lm_eval_patches.fixtures.sound import make_sound
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.tasks.filters import json_object_text

REPO = Path(__file__).resolve().parents[1]
DATASETS = [
    "ruEnvAQA",
    "ruSLUn",
    "AQUARIA",
    "ruTiE-Audio",
    "CommonVideoQA",
    "RealVideoQA",
    "ruHHH-Video",
]
TASKS = AUDIO_TASKS + STANDALONE_TASKS[1:] + VIDEO_TASKS
BAD_INDEX = 1  # the AQUARIA test doc whose second audio is broken


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build the fixtures, break one AQUARIA doc, run all 7 tasks once."""
    import huggingface_hub.constants
    import lm_eval
    import lm_eval.tasks

    root = tmp_path_factory.mktemp("av")
    mirror = root / "mirror"
    build_fixtures(mirror, names=DATASETS)
    write_dataset(aquaria_spec_missing_second_audio(BAD_INDEX), mirror, FixtureOptions())
    cache = root / "hf_cache"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "MERA_DATA_DIR": str(mirror),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(cache),
        }.items():
            mp.setenv(name, value)
        # datasets and huggingface_hub read these once at import: patch the live values too.
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        lm_eval_patches.register()
        FAILURES.items.clear()
        manager = lm_eval.tasks.TaskManager(include_path=str(REPO / "multimodal_tasks"))
        results = lm_eval.simple_evaluate(
            model="mera-baseline", tasks=TASKS, task_manager=manager, log_samples=True
        )
        failures = list(FAILURES.items)
        # A live task object for direct checks (the run's own tasks are gone by now).
        aquaria = manager.load(["aquaria"])["tasks"]["aquaria"]
    assert results is not None
    return {"results": results, "failures": failures, "aquaria": aquaria}


def _samples(run: dict, task: str) -> list[dict]:
    return run["results"]["samples"][task]


def _media(sample: dict) -> dict:
    return sample["arguments"][0][2]


def _prompt(sample: dict) -> str:
    return sample["arguments"][0][0]


# -- the run ----------------------------------------------------------------------------------
def test_every_task_reports_finite_metrics(run: dict) -> None:
    table = run["results"]["results"]
    for task in TASKS:
        assert task in table, f"{task} has no results"
        values = {k: v for k, v in table[task].items() if "," in k and "_stderr" not in k}
        assert values, f"{task}: no metrics"
        for key, value in values.items():
            if key.startswith(("n_scored,", "n_failed,")):  # counts of samples
                assert isinstance(value, int) and value >= 0, (task, key, value)
                continue
            assert isinstance(value, float) and math.isfinite(value), (task, key, value)


def test_task_specific_metrics(run: dict) -> None:
    table = run["results"]["results"]
    assert {"intent_em,scoring", "slot_f1,scoring"} <= set(table["ruslun"])
    assert "group_exact_match,none" in table["ruhhh_video"]
    for task in ("commonvideoqa", "realvideoqa", "ruhhh_video", "ruenvaqa"):
        assert {"exact_match,none", "exact_match_norm,none"} <= set(table[task])


def test_aquaria_requests_carry_both_audios_in_placeholder_order(run: dict) -> None:
    checked = 0
    for sample in _samples(run, "aquaria"):
        inputs, media = sample["doc"]["inputs"], _media(sample)
        if "mera_error" in media or inputs["audio_2"] is None:
            continue
        prompt = _prompt(sample)
        assert prompt.index("<audio_1>") < prompt.index("<audio_2>")
        refs = media["audio"]
        assert [r["sha256"] for r in refs] == [
            inputs["audio_1"]["sha256"],
            inputs["audio_2"]["sha256"],
        ]
        assert all(r["mime"] == "audio/wav" for r in refs)
        assert "visual" not in media and "video" not in media
        checked += 1
    assert checked >= 5


def test_aquaria_single_audio_doc_is_valid(run: dict) -> None:
    singles = [s for s in _samples(run, "aquaria") if s["doc"]["inputs"]["audio_2"] is None]
    assert len(singles) == 1
    assert len(_media(singles[0])["audio"]) == 1
    assert "<audio_2>" not in _prompt(singles[0])


def test_rutie_audio_without_audio_has_no_slot_and_no_media(run: dict) -> None:
    samples = _samples(run, "rutie_audio_default")
    without = [s for s in samples if s["doc"]["inputs"]["audio"] is None]
    with_audio = [s for s in samples if s["doc"]["inputs"]["audio"] is not None]
    assert without and with_audio
    for sample in without:
        assert not _media(sample).get("audio")
        assert "<audio" not in _prompt(sample) and "<context>" not in _prompt(sample)
    for sample in with_audio:
        assert len(_media(sample)["audio"]) == 1
        assert "visual" not in _media(sample)  # audio as audio, not through the image slot
        assert _prompt(sample).count("<audio>") == 1


def test_ruslun_has_one_slot_for_its_one_recording(run: dict) -> None:
    for sample in _samples(run, "ruslun"):
        assert _prompt(sample).count("<audio>") == 1
        assert len(_media(sample)["audio"]) == 1


def test_video_requests_carry_the_clip(run: dict) -> None:
    mimes = set()
    for task in ("commonvideoqa", "realvideoqa", "ruhhh_video"):
        for sample in _samples(run, task):
            refs = _media(sample)["video"]
            assert len(refs) == 1
            assert refs[0]["sha256"] == sample["doc"]["inputs"]["video"]["sha256"]
            mimes.add(refs[0]["mime"])
    assert mimes == {"video/mp4", "video/quicktime"}


def test_ruhhh_video_groups_share_clip_and_question(run: dict) -> None:
    groups: dict[int, set] = {}
    for sample in _samples(run, "ruhhh_video"):
        doc = sample["doc"]
        key = (doc["inputs"]["video"]["sha256"], doc["inputs"]["question"])
        groups.setdefault(doc["meta"]["group_id"], set()).add(key)
    assert len(groups) >= 3
    assert all(len(keys) == 1 for keys in groups.values())


def test_broken_aquaria_doc_fails_alone(run: dict) -> None:
    broken = [s for s in _samples(run, "aquaria") if "mera_error" in _media(s)]
    assert len(broken) == 1
    doc_id = broken[0]["doc"]["meta"]["id"]
    message = _media(broken[0])["mera_error"]
    assert "task aquaria" in message and f"doc {doc_id}" in message
    assert "inputs.audio_2" in message
    (answer,) = broken[0]["filtered_resps"]
    assert failure_reason(answer) == " ".join(message.split())  # the failure answer
    assert broken[0]["exact_match"] is None and broken[0]["n_failed"] == 1
    reported = [f for f in run["failures"] if f.task == "aquaria"]
    assert [(f.doc, f.reason) for f in reported] == [(str(doc_id), message)]
    assert len(run["failures"]) == 1  # nothing else failed


def test_broken_aquaria_doc_raises_media_error(run: dict) -> None:
    task = run["aquaria"]
    doc = next(s["doc"] for s in _samples(run, "aquaria") if "mera_error" in _media(s))
    with pytest.raises(MediaError) as caught:
        task.doc_media(doc)
    text = str(caught.value)
    assert f"task aquaria, doc {doc['meta']['id']}" in text and "inputs.audio_2" in text


# -- fixtures ---------------------------------------------------------------------------------
def test_default_aquaria_fixture_is_clean() -> None:
    (spec,) = select_specs(["AQUARIA"])
    records = build_records(spec, None, FixtureOptions())
    for split, rows in records.items():
        for index, row in enumerate(rows):
            assert row["inputs"]["audio_1"]["bytes"]
            if split == "test" and index == SINGLE_AUDIO_INDEX:
                assert row["inputs"]["audio_2"] is None
                assert "<audio_2>" not in row["instruction"]
            else:
                assert row["inputs"]["audio_2"]["bytes"]
    doc_id = aquaria_missing_second_audio(records)
    broken = [
        r
        for r in records["test"]
        if r["inputs"]["audio_2"] and r["inputs"]["audio_2"]["bytes"] is None
    ]
    assert [r["meta"]["id"] for r in broken] == [doc_id]


def test_ruslun_golds_keep_case_and_apostrophes() -> None:
    from lm_eval_patches.metrics import parse_slun_reference, slun_scores

    (spec,) = select_specs(["ruSLUn"])
    golds = [
        r["outputs"] for rows in build_records(spec, None, FixtureOptions()).values() for r in rows
    ]
    parsed = [parse_slun_reference(g) for g in golds]
    intents = {p["intent"] for p in parsed}
    assert {"RateBook", "PlayMusic", "weather/find"} <= intents
    assert any("'" in v for p in parsed for slot in p["slots"] for v in slot.values())
    for gold in golds:  # a fenced, correct reply scores full marks after our filter
        reply = json_object_text(f"```json\n{gold}\n```")
        assert slun_scores(reply, gold) == {"intent_em": 1.0, "slot_f1": 1.0}


def test_sounds_vary_rate_and_channels() -> None:
    seen = set()
    for seed in range(40):
        data, info = make_sound(random.Random(seed))
        with wave.open(io.BytesIO(data)) as wav:
            assert (wav.getframerate(), wav.getnchannels()) == (info["rate"], info["channels"])
            assert wav.getnframes() == round(info["rate"] * info["seconds"])
        seen.add((info["rate"], info["channels"]))
    assert {r for r, _ in seen} == {8000, 16000, 22050, 44100, 48000}
    assert {c for _, c in seen} == {1, 2}


@pytest.mark.parametrize(
    ("container", "size", "fps"),
    [("mp4", (160, 120), 10), ("mov", (192, 108), 30), ("mp4", (128, 128), 25)],
)
def test_clip_frames_carry_their_index(container: str, size: tuple, fps: int) -> None:
    import av

    data, info = make_clip(random.Random(7), size=size, fps=fps, container=container)
    assert data[4:8] == b"ftyp" and (data[8:12] == b"qt  ") == (container == "mov")
    with av.open(io.BytesIO(data)) as clip:
        stream = clip.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", *size)
        indices = [read_frame_index(frame.to_image()) for frame in clip.decode(stream)]
    assert indices == list(range(info["frames"]))


def test_video_cells_round_trip_undecoded(tmp_path: Path) -> None:
    data, _ = make_clip(random.Random(1), container="mov", seconds=1.0)
    features = datasets.Features({"video": video_feature()})
    path = tmp_path / "v.parquet"
    datasets.Dataset.from_list(
        [{"video": video_cell(data, "samples/v.mov")}], features=features
    ).to_parquet(str(path))
    back = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert type(back.features["video"]) is datasets.Video  # the hub's own type on disk
    cell = back.cast_column("video", datasets.Video(decode=False))[0]["video"]
    assert cell == {"bytes": data, "path": "samples/v.mov"}
