"""The one message builder: placement, counts, dialects, resize, and the inverse parser."""

from __future__ import annotations

import base64
import io
import random

import pytest
from media_samples import make_flac, make_tone_wav, tone
from PIL import Image

from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.messages import (
    MessageError,
    RenderOptions,
    build_messages,
    coerce_media,
    decode_data_url,
    map_media,
    media_parts,
    parse_openai_messages,
    render_messages,
)


def jpeg(width: int = 64, height: int = 48, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def png(width: int = 20, height: int = 10) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def clip() -> bytes:
    from lm_eval_patches.fixtures.clips import make_clip

    data, _ = make_clip(random.Random(3), size=(64, 48), fps=8, seconds=1.0)
    return data


def test_media_at_placeholders_across_turns_in_request_order():
    shot_img, doc_img = MediaRef.from_bytes("image", jpeg()), MediaRef.from_bytes("image", png())
    audio = MediaRef.from_bytes("audio", make_tone_wav(440, 16000, 0.2))
    history = [
        {"role": "system", "content": "Отвечай буквой."},
        {"role": "user", "content": "Пример <image> что это?"},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "<audio>Теперь <image>: что?"},
    ]
    media = {"visual": [shot_img, doc_img], "audio": [audio]}
    messages = build_messages(history, media, task="t", doc="7")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Пример "},
        {"type": "image", "image": shot_img},
        {"type": "text", "text": " что это?"},
    ]
    assert [p["type"] for p in messages[3]["content"]] == ["audio", "text", "image", "text"]
    assert messages[3]["content"][2]["image"] is doc_img
    assert list(media_parts(messages)) == [
        ("image", shot_img),
        ("audio", audio),
        ("image", doc_img),
    ]


def test_plain_prompt_and_numbered_placeholders():
    a1 = MediaRef.from_bytes("audio", make_tone_wav(300, 8000, 0.1))
    a2 = MediaRef.from_bytes("audio", make_tone_wav(600, 8000, 0.1))
    messages = build_messages("Первый <audio_1>, второй <audio_2>.", [a1, a2])
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Первый "},
                {"type": "audio", "audio": a1},
                {"type": "text", "text": ", второй "},
                {"type": "audio", "audio": a2},
                {"type": "text", "text": "."},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("prompt", "images", "expected"),
    [
        (
            "<image> <image>",
            1,
            "the prompt has more <image> placeholders than the request has image media (1)",
        ),
        ("no slot", 1, "media without a placeholder in the prompt: 1 image"),
    ],
)
def test_count_mismatch_names_task_and_doc(prompt, images, expected):
    refs = [MediaRef.from_bytes("image", jpeg()) for _ in range(images)]
    with pytest.raises(MessageError) as err:
        build_messages(prompt, refs, task="rucommonvqa", doc="42")
    assert str(err.value) == f"task rucommonvqa, doc 42: {expected}"


def test_coerce_every_load_form(tmp_path):
    data = jpeg()
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    url = "data:image/png;base64," + base64.b64encode(data).decode()  # a lying MIME
    pil = Image.open(io.BytesIO(data))
    forms = [data, {"url": url}, {"type": "image", "image": str(path)}, str(path), url]
    for form in forms:
        ref = coerce_media(form, "image")
        assert ref.read_bytes() == data and ref.mime == "image/jpeg", form
    assert coerce_media(pil, "image").mime == "image/png"  # no source bytes: PNG
    audio = coerce_media({"array": tone(440, 8000, 0.1)[0], "sampling_rate": 8000}, "audio")
    assert audio.mime == "audio/wav"
    with pytest.raises(MessageError, match="cannot use a image given as int"):
        coerce_media(3, "image")


def test_vllm_dialect_sends_original_bytes_with_real_mime(clip):
    img, wav = jpeg(), make_tone_wav(440, 16000, 0.2)
    messages = build_messages(
        "<image><audio><video>?",
        {
            "visual": [MediaRef.from_bytes("image", img)],
            "audio": [MediaRef.from_bytes("audio", wav)],
            "video": [MediaRef.from_bytes("video", clip)],
        },
    )
    (out,) = render_messages(messages, RenderOptions("vllm"))
    kinds = [p["type"] for p in out["content"]]
    assert kinds == ["image_url", "audio_url", "video_url", "text"]
    urls = [p[p["type"]]["url"] for p in out["content"][:3]]
    assert [decode_data_url(u) for u in urls] == [
        ("image/jpeg", img),
        ("audio/wav", wav),
        ("video/mp4", clip),
    ]


def test_openai_dialect_input_audio_and_video_frames(clip):
    flac = make_flac(tone(440, 16000, 0.2), 16000)
    messages = build_messages(
        "<audio> <video>",
        [MediaRef.from_bytes("audio", flac), MediaRef.from_bytes("video", clip)],
    )
    options = RenderOptions("openai", video_frames=3)
    assert options.video_mode == "frames:3"
    (out,) = render_messages(messages, options)
    assert [p["type"] for p in out["content"]] == ["input_audio", "text"] + ["image_url"] * 3
    audio = out["content"][0]["input_audio"]
    assert audio["format"] == "wav"  # FLAC is not an input_audio format: converted
    assert base64.b64decode(audio["data"])[:4] == b"RIFF"
    frame_mime, frame = decode_data_url(out["content"][2]["image_url"]["url"])
    assert frame_mime == "image/jpeg" and Image.open(io.BytesIO(frame)).size == (64, 48)
    assert RenderOptions("openai").video_mode == "frames:8"
    assert RenderOptions("vllm").video_mode == "native"


def test_resize_only_when_asked_and_needed():
    img = jpeg(400, 200)
    messages = build_messages("<image>", [MediaRef.from_bytes("image", img)])
    untouched = render_messages(messages, RenderOptions(image_width=800))  # never upscales
    assert decode_data_url(untouched[0]["content"][0]["image_url"]["url"])[1] == img
    resized = render_messages(messages, RenderOptions(image_max_side=100))
    mime, data = decode_data_url(resized[0]["content"][0]["image_url"]["url"])
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).size == (100, 50)
    with pytest.raises(ValueError, match="cannot be combined"):
        RenderOptions(image_width=10, image_max_side=10)


def test_all_text_message_renders_as_string():
    assert render_messages(build_messages([{"role": "system", "content": "x"}])) == [
        {"role": "system", "content": "x"}
    ]


def test_parse_is_the_inverse_of_render_in_both_dialects(clip):
    img, wav = jpeg(), make_tone_wav(440, 16000, 0.2)
    messages = build_messages(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "<image>a<audio>b"}],
        [MediaRef.from_bytes("image", img), MediaRef.from_bytes("audio", wav)],
    )
    for dialect in ("vllm", "openai"):
        parsed = parse_openai_messages(render_messages(messages, RenderOptions(dialect)))
        assert parsed == messages  # MediaRefs compare by kind and content hash
        assert [r.mime for _, r in media_parts(parsed)] == ["image/jpeg", "audio/wav"]


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ({"type": "image_url", "image_url": {"url": "http://x/a.png"}}, "only data: URLs"),
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}, "base64"),
        ({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}, "no data"),
        ({"type": "file", "file": {}}, "unsupported content part type 'file'"),
        ({"text": "no type"}, "must be an object with a type"),
    ],
)
def test_parse_rejects_bad_parts_naming_where(part, expected):
    with pytest.raises(MessageError, match=expected) as err:
        parse_openai_messages([{"role": "user", "content": [part]}])
    assert "messages[0].content[0]" in str(err.value)


def test_parse_keeps_remote_urls_only_when_allowed():
    part = {"type": "video_url", "video_url": "https://example.org/v.mp4"}
    parsed = parse_openai_messages([{"role": "user", "content": [part]}], allow_remote=True)
    assert parsed[0]["content"] == [{"type": "video", "video": "https://example.org/v.mp4"}]


def test_map_media_gives_hf_chat_template_shape():
    ref = MediaRef.from_bytes("image", jpeg())
    hf = map_media(build_messages("<image>Что?", [ref]), lambda kind, r: r.as_pil())
    part = hf[0]["content"][0]
    assert part["type"] == "image" and isinstance(part["image"], Image.Image)
