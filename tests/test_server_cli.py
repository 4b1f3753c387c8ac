"""The model server driven by plain `lm-eval` (our local-/openai-chat-completions, both media
dialects, with and without pass mode) and started by the original's `uvicorn main:app` and by
`mera-mm serve`, over real HTTP on 127.0.0.1 with tiny random models."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, REPO, TASKS_DIR, run_cli
from server_helpers import free_port, recording, serve
from tiny_models import build_tiny_llava, build_tiny_qwen2_audio

from lm_eval_patches.server.config import ServerConfig

pytestmark = pytest.mark.slow
CPU = {"device": "cpu", "dtype": "float32"}


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def run_lm_eval(model: str, url: str, tasks: str, out: Path, mirror: Path, *extra, args=""):
    model_args = f"model=tiny,base_url={url}/v1/chat/completions,num_concurrent=2" + args
    return run_cli(
        [
            "run",
            "--model",
            model,
            "--model_args",
            model_args,
            "--include_path",
            str(TASKS_DIR),
            "--tasks",
            tasks,
            "--limit",
            "2",
            "--num_fewshot",
            "1",
            "--gen_kwargs",
            "max_gen_toks=3",
            "--log_samples",
            "--output_path",
            str(out),
            *extra,
        ],
        {"MERA_DATA_DIR": str(mirror), "OPENAI_API_KEY": "sk-unused"},
    )


def answers(out: Path) -> list[str]:
    return [
        json.loads(line)["resps"][0][0]
        for path in out.rglob("samples_*.jsonl")
        for line in path.read_text().splitlines()
    ]


def kinds(turn: tuple) -> list[tuple[str, str | None]]:
    return [part for part in turn[1] if part[0] != "text"]


def test_our_backends_against_the_server_images_and_video(
    llava_dir: Path, mirror: Path, tmp_path: Path
) -> None:
    adapter = recording("hf-image-text-to-text")(str(llava_dir), **CPU, num_frames="4")
    config = ServerConfig("hf-image-text-to-text", str(llava_dir), served_model_name="tiny")
    with serve(config, adapter) as url:
        # vllm dialect, pass mode, few-shot as turns: the shot's medium in the shot's turn.
        proc = run_lm_eval(
            "local-chat-completions",
            url,
            "rucommonvqa,commonvideoqa",
            tmp_path / "vllm",
            mirror,
            "--apply_chat_template",
            "--fewshot_as_multiturn",
            "--pass_multimodal_args_to_chat_history",
        )
        vllm_seen, adapter.received[:] = list(adapter.received), []
        # openai dialect, no pass mode: one user turn; videos arrive as 2 JPEG frames each.
        run_lm_eval(
            "openai-chat-completions",
            url,
            "rucommonvqa,commonvideoqa",
            tmp_path / "openai",
            mirror,
            args=",media_dialect=openai,video_frames=2",
        )
        openai_seen = list(adapter.received)
    assert "request(s) failed" not in proc.stderr
    assert len(vllm_seen) == len(openai_seen) == 4
    shapes = set()
    for conversation in vllm_seen:
        assert [role for role, _ in conversation] == ["user", "assistant", "user"]
        shot, question = kinds(conversation[0]), kinds(conversation[2])
        assert len(shot) == len(question) == 1 and shot[0][0] == question[0][0]
        shapes.update(shot + question)
    # Images keep their real type (JPEG/PNG from the fixtures); videos arrive natively.
    assert {kind for kind, _ in shapes} == {"image", "video"}
    assert all(mime and mime.split("/")[0] == kind for kind, mime in shapes)
    counts = sorted(
        (len(conversation), [k for k, _ in kinds(conversation[0])].count("image"))
        for conversation in openai_seen
    )
    assert counts == [(1, 2), (1, 2), (1, 4), (1, 4)]  # 2 images; 2 videos x 2 frames
    for run in ("vllm", "openai"):
        got = answers(tmp_path / run)
        assert len(got) == 4 and all(isinstance(a, str) for a in got)


def test_our_backend_against_the_server_audio(mirror: Path, tmp_path: Path) -> None:
    model = build_tiny_qwen2_audio(tmp_path / "tiny-qwen2-audio")
    adapter = recording("qwen2-audio")(str(model), **CPU)
    config = ServerConfig("qwen2-audio", str(model), served_model_name="tiny")
    with serve(config, adapter) as url:
        # openai dialect (input_audio), pass mode without multiturn: one user turn.
        run_lm_eval(
            "local-chat-completions",
            url,
            "ruenvaqa",
            tmp_path / "out",
            mirror,
            "--apply_chat_template",
            "--pass_multimodal_args_to_chat_history",
            args=",media_dialect=openai",
        )
    assert len(adapter.received) == 2
    for conversation in adapter.received:
        media = [part for turn in conversation for part in kinds(turn)]
        assert media == [("audio", "audio/wav")] * 2  # the shot's clip, then the doc's
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    usage = results["config"]["mera_api"]["tasks"]["ruenvaqa"]
    assert usage["failed"] == 0 and usage["prompt_tokens"] > 2 * 2 * 13  # 2 docs, 2 clips each


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stdout.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy")


@pytest.mark.parametrize("start", ["uvicorn main:app", "mera-mm serve"])
def test_start_commands_serve_with_a_token(llava_dir: Path, start: str) -> None:
    """Both start commands, for real in a subprocess, serving a proxy to the tiny LLaVA (so the
    subprocess starts in about a second: the proxy imports no torch); the API key comes from
    the environment, read at start-up."""
    import openai

    port = free_port()
    env = {**os.environ, "MERA_SERVER_API_KEY": "sk-env"}
    config = ServerConfig("hf-image-text-to-text", str(llava_dir), options=dict(CPU))
    with serve(config) as upstream:
        upstream_args = f"base_url={upstream}/v1,timeout=60"
        if start == "uvicorn main:app":
            env.update(
                MERA_SERVER_ADAPTER="proxy",
                MERA_SERVER_MODEL=str(llava_dir),
                MERA_SERVER_SERVED_MODEL_NAME="tiny",
                MERA_SERVER_MODEL_ARGS=upstream_args,
            )
            cmd = [str(BIN / "uvicorn"), "main:app", "--port", str(port)]
            cwd = REPO / "scripts" / "fastapi_models"
        else:
            cmd = [
                str(BIN / "mera-mm"),
                "serve",
                "--adapter",
                "proxy",
                "--model",
                str(llava_dir),
                "--served-model-name",
                "tiny",
                "--model-args",
                upstream_args,
                "--port",
                str(port),
            ]
            cwd = REPO
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, proc)
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-env")
            reply = client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "Привет"}], max_tokens=2
            )
            assert reply.usage.completion_tokens <= 2
            assert reply.choices[0].message.role == "assistant"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_upstream_local_chat_completions_against_the_server(
    llava_dir: Path, mera_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stock lm-eval's own LocalChatCompletion (not our subclass of it) on an image task, fed
    the original's default media form (PIL images), answered by our server: upstream sends one
    PNG image part per request and a text part, and every sample gets the model's answer."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from lm_eval_patches.registration import import_upstream
    from lm_eval_patches.settings import RUN_OPTIONS

    upstream = import_upstream(
        ("local-chat-completions", "openai-chat-completions"),
        "lm_eval.models.openai_completions",
        "LocalChatCompletion",
    )
    assert upstream.__module__ == "lm_eval.models.openai_completions"
    monkeypatch.setattr(RUN_OPTIONS, "backend_resolves_media", False)  # a third-party backend
    adapter = recording("hf-image-text-to-text")(str(llava_dir), **CPU)
    config = ServerConfig("hf-image-text-to-text", str(llava_dir), served_model_name="tiny")
    with serve(config, adapter) as url:
        lm = upstream(
            model="tiny", base_url=f"{url}/v1/chat/completions", num_concurrent=1, max_retries=1
        )
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=["weird"],
            limit=2,
            apply_chat_template=True,
            gen_kwargs="max_gen_toks=3",
            log_samples=True,
            task_manager=TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
        )
    assert len(adapter.received) == 2
    for conversation in adapter.received:
        (role, parts), *_ = conversation[-1:]
        assert role == "user"
        assert [kind for kind, _ in kinds(conversation[-1])] == ["image"]
        assert any(kind == "text" for kind, _ in parts)
    got = [s["resps"][0][0] for s in results["samples"]["weird"]]
    assert len(got) == 2 and all(isinstance(a, str) and a for a in got)
