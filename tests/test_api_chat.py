"""The chat API backends in process, over real HTTP on loopback: order, per-request failures,
resizing, refused parameters, model info."""

from __future__ import annotations

import io

import pytest
from lm_eval.api.instance import Instance
from loopback_api import Behaviour, LoopbackAPI
from PIL import Image

from lm_eval_patches.failures import BUILD_ERROR_KEY, FAILURES
from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.messages import decode_data_url


def jpeg(width: int, height: int) -> MediaRef:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (9, 99, 199)).save(buf, format="JPEG")
    return MediaRef.from_bytes("image", buf.getvalue())


def request(doc_id: int, prompt: str, media: dict) -> Instance:
    return Instance(
        request_type="generate_until",
        doc={"meta": {"id": 100 + doc_id}},
        arguments=(prompt, {"until": ["\n\n"], "max_gen_toks": 8}, media),
        idx=0,
        metadata=("toy_task", doc_id, 1),
    )


@pytest.fixture
def backend_for():
    from lm_eval_patches.models.api_chat import MeraLocalChatCompletion

    def make(server: LoopbackAPI, **args):
        return MeraLocalChatCompletion(
            model="tiny", base_url=server.url, retry_backoff=0.01, max_retries=2, **args
        )

    return make


def test_bad_requests_fail_alone_and_order_is_kept(backend_for):
    FAILURES.items.clear()
    requests = [
        request(0, "<image> first", {"visual": [jpeg(8, 8)]}),
        request(1, "<image><image> too many", {"visual": [jpeg(8, 8)]}),
        request(2, "broken", {BUILD_ERROR_KEY: "cannot decode"}),
        request(3, "<image> last", {"visual": [jpeg(9, 9)]}),
    ]
    with LoopbackAPI(Behaviour(reply="B")) as server:
        answers = backend_for(server, num_concurrent=2).generate_until(requests)
    assert answers == ["B", "", "", "B"]
    assert len(server.received) == 2  # the bad ones were never sent
    (failure,) = FAILURES.items  # the build failure was the task's to record
    assert (failure.task, failure.doc) == ("toy_task", "101")
    assert "more <image> placeholders" in failure.reason
    FAILURES.items.clear()


def test_resize_args_and_refused_parameter(backend_for):
    with LoopbackAPI(Behaviour(reject_params=("max_tokens",))) as server:
        backend = backend_for(server, image_max_side=50)
        answers = backend.generate_until(
            [request(i, "<image>?", {"visual": [jpeg(200, 100)]}) for i in range(3)]
        )
        info = backend.get_model_info()["mera_api"]
    assert answers == ["A", "A", "A"]
    sent = [b for b in server.received if "max_tokens" not in b]
    assert len(sent) == 3 and all(b["max_completion_tokens"] == 8 for b in sent)
    mime, data = decode_data_url(sent[0]["messages"][0]["content"][0]["image_url"]["url"])
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).size == (50, 25)
    assert info["refused_params"] == ["max_tokens"]
    assert info["tasks"]["toy_task"]["requests"] == 3
    assert info["tasks"]["toy_task"]["prompt_tokens"] == 33


def test_bad_model_args_fail_before_any_request():
    from lm_eval_patches.models.api_chat import MeraLocalChatCompletion

    with pytest.raises(ValueError, match="media_dialect must be one of vllm, openai"):
        MeraLocalChatCompletion(model="m", base_url="http://127.0.0.1:9", media_dialect="x")
    with pytest.raises(ValueError, match="cannot be combined"):
        MeraLocalChatCompletion(
            model="m", base_url="http://127.0.0.1:9", image_width=5, image_max_side=5
        )
