"""The model server over real HTTP on 127.0.0.1: the official openai client against the tiny
LLaVA and tiny Qwen2-Audio, the proxy adapter, and the safe-by-default cases."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from server_helpers import post_raw, recording, serve
from tiny_models import build_tiny_llava, build_tiny_qwen2_audio

from lm_eval_patches.server.config import ServerConfig

KEY = "sk-test-key"
CPU = {"device": "cpu", "dtype": "float32"}


def jpeg_url(size=(64, 48), color=(200, 30, 30)) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def wav_b64(seconds=0.5, rate=22050) -> str:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32"), rate, format="WAV")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def llava_server(tmp_path_factory: pytest.TempPathFactory):
    """Tiny LLaVA behind the server, with a bearer token and a 2 MB body limit."""
    model = build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))
    adapter = recording("hf-image-text-to-text")(str(model), **CPU)
    config = ServerConfig(
        adapter="hf-image-text-to-text",
        model=str(model),
        served_model_name="tiny-llava",
        api_key=KEY,
        max_body_bytes=2_000_000,
    )
    with serve(config, adapter) as url:
        yield url, adapter


def test_openai_client_image_round_trip(llava_server) -> None:
    import openai

    url, adapter = llava_server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
    messages = [
        {"role": "system", "content": "Отвечай кратко."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Что на картинке"},
                {"type": "image_url", "image_url": {"url": jpeg_url()}},
                {"type": "text", "text": "и на этой?"},
                {"type": "image_url", "image_url": {"url": jpeg_url(color=(0, 0, 250))}},
            ],
        },
    ]
    first = client.chat.completions.create(
        model="tiny-llava", messages=messages, max_completion_tokens=6, temperature=0, seed=1
    )
    assert first.id.startswith("chatcmpl-") and first.object == "chat.completion"
    assert first.model == "tiny-llava" and first.created > 0
    choice = first.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length") and isinstance(choice.message.content, str)
    usage = first.usage
    assert 0 < usage.completion_tokens <= 6 and usage.prompt_tokens > 2 * 16  # 16 per image
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert adapter.received[-1] == [
        ("system", [("text", "Отвечай кратко.")]),
        (
            "user",
            [
                ("text", "Что на картинке"),
                ("image", "image/jpeg"),
                ("text", "и на этой?"),
                ("image", "image/jpeg"),
            ],
        ),
    ]
    # Greedy is repeatable; the older max_tokens works too; settings never reload the model.
    again = client.chat.completions.create(
        model="tiny-llava", messages=messages, max_tokens=6, temperature=0
    )
    assert again.choices[0].message.content == choice.message.content
    short = client.chat.completions.create(
        model="tiny-llava", messages=messages, max_tokens=1, temperature=0
    )
    assert short.usage.completion_tokens == 1 and short.choices[0].finish_reason == "length"
    sampled = client.chat.completions.create(
        model="tiny-llava",
        messages=messages,
        max_completion_tokens=4,
        temperature=0.7,
        top_p=0.9,
        seed=7,
        stop=["\n\n", "###"],
    )
    params = adapter.last_params
    assert (params.temperature, params.top_p, params.seed, params.max_tokens) == (0.7, 0.9, 7, 4)
    assert params.stop == ["\n\n", "###"] and "###" not in sampled.choices[0].message.content
    assert adapter.loads == 1
    listed = client.models.list()
    assert [m.id for m in listed.data] == ["tiny-llava"]


def test_stop_strings_cut_the_answer(llava_server) -> None:
    import openai

    url, _ = llava_server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
    messages = [{"role": "user", "content": "Choose the correct option"}]
    full = client.chat.completions.create(
        model="tiny-llava", messages=messages, max_tokens=8, temperature=0
    )
    text = full.choices[0].message.content
    assert len(text) > 2
    stop = text[2:4]  # whatever the random model says, stop inside it
    cut = client.chat.completions.create(
        model="tiny-llava", messages=messages, max_tokens=8, temperature=0, stop=[stop]
    )
    assert cut.choices[0].message.content == text[: text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"


def _error(reply, status: int, code: str | None = None) -> dict:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] and "Traceback" not in reply.text
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def _chat(content, model="tiny-llava", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def gigapixel_png() -> bytes:
    """A PNG whose header says 40000x30000 (1.2 gigapixels), with almost no data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 40000, 30000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        [chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(b"\0" * 10)), chunk(b"IEND", b"")]
    )


GIGAPIXEL_URL = "data:image/png;base64," + base64.b64encode(gigapixel_png()).decode()
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    "name, body, headers, status, says",
    [
        ("no token", _chat("hi"), {"Content-Type": "application/json"}, 401, "API key"),
        ("wrong token", _chat("hi"), {"Authorization": "Bearer nope"}, 401, "API key"),
        ("body too big", b"{" + b" " * 2_100_000 + b"}", AUTH, 413, "over this server's limit"),
        ("malformed json without a token", b"{", {}, 401, "API key"),
        (
            "remote url",
            _chat([{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/a.jpg"}}]),
            AUTH,
            400,
            "only data: URLs are accepted",
        ),
        ("malformed json", b'{"model": "tiny-llava", "messages": [', AUTH, 400, "not valid JSON"),
        ("not an object", b"[1, 2]", AUTH, 400, "must be a JSON object"),
        ("no messages", {"model": "tiny-llava"}, AUTH, 400, "messages: Field required"),
        (
            "bad base64",
            _chat([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]),
            AUTH,
            400,
            "not valid base64",
        ),
        (
            "not an image",
            _chat([{"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]),
            AUTH,
            400,
            "not a recognised image",
        ),
        (
            "too large to decode reduced",
            _chat([{"type": "image_url", "image_url": {"url": GIGAPIXEL_URL}}]),
            AUTH,
            400,
            "is over 1,000,000,000 pixels",
        ),
        (
            "audio to an image model",
            _chat([{"type": "input_audio", "input_audio": {"data": wav_b64(), "format": "wav"}}]),
            AUTH,
            400,
            "does not take audio",
        ),
        ("unknown part", _chat([{"type": "file", "file": {}}]), AUTH, 400, "unsupported content"),
        ("bad role", {"model": "tiny-llava", "messages": [{"role": "x"}]}, AUTH, 400, "role"),
        ("temperature out of range", _chat("hi", temperature=5), AUTH, 400, "temperature"),
        ("streaming", _chat("hi", stream=True), AUTH, 400, "streaming"),
        ("unknown model", _chat("hi", model="gpt-9"), AUTH, 404, "not served here"),
    ],
)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # refused on purpose
def test_refusals_are_openai_shaped_4xx(llava_server, name, body, headers, status, says) -> None:
    url, _ = llava_server
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    error = _error(post_raw(f"{url}/v1/chat/completions", raw, headers), status)
    assert says in error["message"]
    if status == 400 and b'"type"' in raw:  # a content part was at fault: named
        assert error["param"].startswith("messages[0]")


def test_models_needs_the_token_health_does_not(llava_server) -> None:
    import httpx
    import openai

    url, _ = llava_server
    _error(httpx.get(f"{url}/v1/models"), 401, "invalid_api_key")
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    _error(httpx.get(f"{url}/v1/nothing-here"), 401)  # no hints to strangers
    _error(httpx.get(f"{url}/v1/nothing-here", headers=AUTH), 404)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong").models.list()


def test_proxy_forwards_to_another_server(llava_server) -> None:
    import openai

    url, adapter = llava_server
    config = ServerConfig(
        adapter="proxy",
        model="tiny-llava",
        served_model_name="via-proxy",
        options={"base_url": f"{url}/v1", "api_key": KEY},
    )
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": jpeg_url()}},
                {"type": "text", "text": "Что это?"},
            ],
        }
    ]
    direct = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY).chat.completions.create(
        model="tiny-llava", messages=messages, max_tokens=5, temperature=0
    )
    with serve(config) as proxy_url:
        client = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="unused")
        relayed = client.chat.completions.create(
            model="via-proxy", messages=messages, max_tokens=5, temperature=0
        )
        assert relayed.model == "via-proxy"
        assert relayed.choices[0].message.content == direct.choices[0].message.content
        assert relayed.usage.total_tokens == direct.usage.total_tokens
        assert adapter.received[-1] == [("user", [("image", "image/jpeg"), ("text", "Что это?")])]
        audio = {"type": "input_audio", "input_audio": {"data": wav_b64(), "format": "wav"}}
        with pytest.raises(openai.BadRequestError, match="does not take audio"):
            client.chat.completions.create(
                model="via-proxy", messages=[{"role": "user", "content": [audio]}]
            )


def test_openai_client_audio_with_tiny_qwen2_audio(tmp_path: Path) -> None:
    import openai

    model = build_tiny_qwen2_audio(tmp_path / "tiny-qwen2-audio")
    adapter = recording("qwen2-audio")(str(model), **CPU)
    config = ServerConfig(adapter="qwen2-audio", model=str(model), served_model_name="tiny-audio")
    audio = wav_b64()
    with serve(config, adapter) as url:
        reply = openai.OpenAI(base_url=f"{url}/v1", api_key="x").chat.completions.create(
            model="tiny-audio",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
                        {"type": "text", "text": "Что звучит?"},
                        {
                            "type": "audio_url",
                            "audio_url": {"url": f"data:audio/wav;base64,{audio}"},
                        },
                    ],
                }
            ],
            max_completion_tokens=4,
            temperature=0,
        )
    assert reply.usage.completion_tokens <= 4
    # 0.5 s at 16 kHz: 50 mel frames -> 13 audio tokens per clip, both clips in the prompt.
    assert reply.usage.prompt_tokens > 2 * 13
    assert adapter.received[-1] == [
        ("user", [("audio", "audio/wav"), ("text", "Что звучит?"), ("audio", "audio/wav")])
    ]


def test_a_failing_model_answers_500_without_a_traceback(llava_server, monkeypatch) -> None:
    url, adapter = llava_server

    def out_of_memory(messages, params):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(adapter, "generate", out_of_memory)
    error = _error(
        post_raw(f"{url}/v1/chat/completions", json.dumps(_chat("hi")).encode(), AUTH), 500
    )
    assert error["type"] == "server_error" and "CUDA out of memory" in error["message"]
    monkeypatch.undo()
    ok = post_raw(
        f"{url}/v1/chat/completions", json.dumps(_chat("hi", max_tokens=1)).encode(), AUTH
    )
    assert ok.status_code == 200  # the server goes on serving


def test_chunked_bodies_are_counted_against_the_limit(llava_server) -> None:
    import httpx

    url, _ = llava_server

    def chunks(body: bytes, size: int = 65536):
        yield from (body[i : i + size] for i in range(0, len(body), size))

    big = json.dumps(_chat("x" * 2_100_000)).encode()
    reply = httpx.post(f"{url}/v1/chat/completions", content=chunks(big), headers=AUTH)
    assert "content-length" not in reply.request.headers  # really sent chunked
    _error(reply, 413, "body_too_large")
    small = json.dumps(_chat("hi", max_tokens=1)).encode()
    reply = httpx.post(f"{url}/v1/chat/completions", content=chunks(small, 7), headers=AUTH)
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 1


def test_remote_media_only_when_enabled_and_capped(llava_server, tmp_path: Path) -> None:
    """With --allow-remote-media, http(s) images are fetched (here from a loopback file
    server), within the size cap; the same URL is refused by the default server above."""
    import functools
    import http.server
    import threading

    import httpx
    from server_helpers import free_port

    url, adapter = llava_server
    jpeg = base64.b64decode(jpeg_url().partition(",")[2])
    (tmp_path / "cat.jpg").write_bytes(jpeg)
    (tmp_path / "big.jpg").write_bytes(jpeg + b"\0" * 5000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_address[1]}"

    def ask(server_url: str, name: str):
        part = {"type": "image_url", "image_url": {"url": f"{base}/{name}"}}
        body = _chat([part, {"type": "text", "text": "?"}], max_tokens=1)
        return httpx.post(f"{server_url}/v1/chat/completions", json=body, headers=AUTH)

    config = ServerConfig(
        adapter="hf-image-text-to-text",
        model="unused",
        served_model_name="tiny-llava",
        api_key=KEY,
        allow_remote_media=True,
        max_remote_media_bytes=len(jpeg) + 100,
    )
    try:
        _error(ask(url, "cat.jpg"), 400)  # the default server: data: URLs only
        with serve(config, adapter) as remote_url:
            assert ask(remote_url, "cat.jpg").status_code == 200
            assert adapter.received[-1] == [("user", [("image", "image/jpeg"), ("text", "?")])]
            assert "over" in _error(ask(remote_url, "big.jpg"), 400, "media_too_large")["message"]
            _error(ask(remote_url, "missing.jpg"), 400, "fetch_failed")
    finally:
        files.shutdown()
