"""hf-multimodal (MeraHFMultimodalLM): media resolution, failure isolation, a tiny LLaVA on CPU."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from lm_eval.api.instance import Instance
from PIL import Image
from tiny_models import NUM_IMAGE_TOKENS, build_tiny_llava

from lm_eval_patches.failures import FAILURES, failure_reason, is_failure
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.models.hf_multimodal import HFMultimodalLM, MeraHFMultimodalLM

GEN_KWARGS = {"until": ["\n\n"], "max_gen_toks": 4, "do_sample": False}


def png(size: tuple[int, int], color: str = "red", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def image_ref(data: bytes, doc: int) -> MediaRef:
    return MediaRef.from_bytes("image", data, where=f"task t, doc {doc}, field inputs.image")


def request(doc: int, context: str, media: dict) -> Instance:
    return Instance(
        request_type="generate_until",
        doc={"meta": {"id": f"id-{doc}"}},
        arguments=(context, dict(GEN_KWARGS), media),
        idx=0,
        metadata=("t", doc, 1),
    )


def bare_lm(**sizes: int | None) -> MeraHFMultimodalLM:
    """An instance without a model, for the parts that need none."""
    lm = object.__new__(MeraHFMultimodalLM)
    lm.mera_image_sizes = {"width": None, "height": None, "max_side": None, **sizes}
    lm._rank = 0
    return lm


class ProcessorSpy:
    """Wraps a processor and records the sizes of the images each call receives."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[dict] = []

    def __call__(self, *args, **kwargs):
        images = kwargs.get("images") or []
        self.calls.append({"sizes": [img.size for img in images], "text": kwargs.get("text")})
        return self.inner(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


# -- without a model --------------------------------------------------------------------------
def test_registry_resolves_hf_multimodal_to_our_class() -> None:
    from lm_eval.api.registry import model_registry

    from lm_eval_patches.registration import register_backends

    register_backends()
    assert model_registry.get("hf-multimodal") is MeraHFMultimodalLM


def test_resolve_image_applies_mera_resize_rules() -> None:
    lm = bare_lm(max_side=20)
    assert lm.resolve_image(image_ref(png((100, 50)), 1)).size == (20, 10)
    assert lm.resolve_image(Image.new("RGB", (50, 100))).size == (10, 20)
    assert lm.resolve_image(png((40, 40), fmt="JPEG")).size == (20, 20)  # LOAD_BYTES form
    # max_side also upscales (the original's rule); width only never does.
    assert lm.resolve_image(image_ref(png((10, 5)), 1)).size == (20, 10)
    assert bare_lm(width=30).resolve_image(image_ref(png((10, 5)), 1)).size == (10, 5)
    with pytest.raises(MediaError, match="task t, doc 2, field inputs.image"):
        lm.resolve_image(image_ref(b"not an image", 2))
    # Every form the project produces is accepted (LOAD_BASE64's dict included).
    data_url = {"url": "data:image/png;base64," + base64.b64encode(png((100, 50))).decode()}
    assert lm.resolve_image(data_url).size == (20, 10)
    with pytest.raises(MediaError, match="cannot decode"):
        lm.resolve_image({"url": "data:image/png;base64,AAAA"})
    with pytest.raises(TypeError, match="cannot use"):
        lm.resolve_image(12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_max_side": 20, "image_width": 10}, "cannot be combined"),
        ({"image_max_side": "20", "image_height": "10"}, "cannot be combined"),
        ({"image_width": 0}, "positive"),
        ({"image_height": "tall"}, "must be an integer"),
    ],
)
def test_invalid_resize_args_fail_before_loading(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MeraHFMultimodalLM(pretrained="/nonexistent/model", **kwargs)


def test_failed_requests_are_split_off_and_answers_merged_in_order(monkeypatch) -> None:
    seen: list[list[str]] = []

    def fake_upstream(self, requests, disable_tqdm=False):
        seen.append([r.args[0] for r in requests])
        for r in requests:  # upstream gets decoded images and always a "visual" list
            assert all(isinstance(img, Image.Image) for img in r.args[2]["visual"])
        return [f"answer to {r.args[0]}" for r in requests]

    monkeypatch.setattr(HFMultimodalLM, "generate_until", fake_upstream)
    lm = bare_lm()
    lm.MEDIA_WINDOW = 2  # windows [0, 1], [2, 3], [4]
    good = image_ref(png((8, 8)), 0)
    reqs = [
        request(0, "c0", {"visual": [good]}),
        request(1, "c1", {"visual": [image_ref(b"broken", 1)]}),
        request(2, "c2", {}),
        request(3, "c3", {"visual": [good], "audio": [object()]}),
        request(4, "c4", {"visual": [good, good]}),
    ]
    before = len(FAILURES.items)
    answers = lm.generate_until(reqs, disable_tqdm=True)
    assert [answers[i] for i in (0, 2, 4)] == ["answer to c0", "answer to c2", "answer to c4"]
    assert is_failure(answers[1]) and "cannot decode image" in failure_reason(answers[1])
    assert "passes only images" in failure_reason(answers[3])
    assert seen == [["c0"], ["c2"], ["c4"]]
    new = FAILURES.items[before:]
    assert [(f.task, f.doc) for f in new] == [("t", "id-1"), ("t", "id-3")]
    assert "inputs.image" in new[0].reason and "audio" in new[1].reason
    # The caller's requests keep their lazy references.
    assert reqs[0].args[2]["visual"] == [good] and "visual" not in reqs[2].args[2]


# -- with a tiny LLaVA --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def lm(tiny_llava: Path) -> MeraHFMultimodalLM:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        model = MeraHFMultimodalLM(
            pretrained=str(tiny_llava),
            device="cpu",
            dtype="float32",
            max_length=1024,
            batch_size=2,
            image_max_side=20,
        )
    yield model


def test_tiny_llava_loads_with_auto_classes(tiny_llava: Path, monkeypatch) -> None:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    processor = AutoProcessor.from_pretrained(tiny_llava)
    model = AutoModelForImageTextToText.from_pretrained(tiny_llava, dtype=torch.float32)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Что это?"}]}]
    prompt = processor.apply_chat_template(chat, add_generation_prompt=True)
    assert prompt == "user: <image>Что это?\nassistant:"
    inputs = processor(text=[prompt], images=[Image.new("RGB", (40, 30))], return_tensors="pt")
    image_id = model.config.image_token_id
    assert int((inputs["input_ids"] == image_id).sum()) == NUM_IMAGE_TOKENS
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3


def test_generate_until_with_a_corrupt_image_in_the_batch(lm: MeraHFMultimodalLM) -> None:
    assert lm.MULTIMODAL and str(lm.device) == "cpu" and lm.max_length == 1024
    reqs = [
        request(1, "<image> Что изображено? Ответ:", {"visual": [image_ref(png((100, 50)), 1)]}),
        request(2, "<image> Какой цвет? Ответ:", {"visual": [image_ref(b"\x89PNG broken", 2)]}),
        request(3, "Вопрос без картинки. Ответ:", {}),
        request(
            4,
            "<image> и <image>: сравните.",
            {"visual": [image_ref(png((64, 64), "blue", "JPEG"), 4), image_ref(png((30, 40)), 4)]},
        ),
        request(5, "Ещё один вопрос без картинки:", {"visual": []}),
    ]
    before = len(FAILURES.items)
    first = lm.generate_until(reqs, disable_tqdm=True)
    failures = FAILURES.items[before:]
    assert [(f.task, f.doc) for f in failures] == [("t", "id-2")]
    assert "task t, doc 2, field inputs.image" in failures[0].reason
    assert failure_reason(first[1]) == failures[0].reason  # the failure answer
    assert all(isinstance(answer, str) for answer in first)
    assert all("\n\n" not in answer for answer in first)

    second = lm.generate_until(reqs, disable_tqdm=True)
    # Greedy decoding is deterministic (a failure's reason may quote an object address).
    assert [is_failure(a) or a for a in second] == [is_failure(a) or a for a in first]


def test_images_reach_the_processor_resized(lm: MeraHFMultimodalLM, monkeypatch) -> None:
    spy = ProcessorSpy(lm.processor)
    monkeypatch.setattr(lm, "processor", spy)
    reqs = [
        request(1, "<image> Ответ:", {"visual": [image_ref(png((100, 50)), 1)]}),
        request(2, "<image> Ответ:", {"visual": [image_ref(png((30, 60), "green"), 2)]}),
    ]
    lm.generate_until(reqs, disable_tqdm=True)
    sizes = sorted(size for call in spy.calls for size in call["sizes"])
    assert sizes == [(10, 20), (20, 10)]


def test_chat_template_places_images_at_placeholders(lm: MeraHFMultimodalLM, monkeypatch) -> None:
    monkeypatch.setattr(lm, "chat_applied", False)
    context = lm.apply_chat_template([{"role": "user", "content": "Смотри: <image> Что это?"}])
    assert context == "user: Смотри: <image> Что это?\nassistant:"
    spy = ProcessorSpy(lm.processor)
    monkeypatch.setattr(lm, "processor", spy)
    answers = lm.generate_until(
        [request(1, context, {"visual": [image_ref(png((100, 50)), 1)]})], disable_tqdm=True
    )
    assert isinstance(answers[0], str)
    assert spy.calls[0]["text"] == [context] and spy.calls[0]["sizes"] == [(20, 10)]


def test_every_media_form_resolves_to_the_same_upright_picture(monkeypatch, tmp_path: Path) -> None:
    """The same picture as a lazy ref and in every LOAD_* form: same size, same pixels (up to
    JPEG re-encoding), upright; and through ``_prepared`` none of them fails."""
    import numpy as np

    from lm_eval_patches.media.forms import LOAD_SWITCHES, materialise

    monkeypatch.setenv("LM_EVAL_MEDIA_DIR", str(tmp_path))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: every form must arrive upright
    buf = io.BytesIO()
    stored = Image.new("RGB", (60, 30), "red")
    stored.paste((0, 0, 255), (30, 0, 60, 30))
    stored.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    ref = image_ref(buf.getvalue(), 1)
    forms = {"ref": ref, **{mode: materialise(ref, mode) for mode in LOAD_SWITCHES}}
    lm = bare_lm(max_side=20)
    pictures = {name: lm.resolve_image(value) for name, value in forms.items()}
    reference = np.asarray(pictures["ref"], dtype=int)
    for name, picture in pictures.items():
        assert picture.size == (10, 20), name  # upright: 30 wide, 60 tall, scaled to 20
        diff = np.abs(np.asarray(picture, dtype=int) - reference)
        assert diff.mean() <= 2 and diff.max() <= 40, name  # JPEG ringing at the red/blue edge
        assert picture.getpixel((5, 2))[0] > 200 and picture.getpixel((5, 17))[2] > 200, name
    for name, value in forms.items():
        prepared, problem = lm._prepared(request(1, "<image> Что это?", {"visual": [value]}))
        assert problem is None and prepared.args[2]["visual"][0].size == (10, 20), name


def test_huge_image_is_answered_and_an_undecodable_one_fails_alone(
    lm: MeraHFMultimodalLM, monkeypatch
) -> None:
    """The 180-megapixel case as a lazy reference: decoded under the budget and answered."""
    huge = (Path(__file__).parent / "cases" / "huge_20000x9000.png").read_bytes()
    monkeypatch.setenv("MERA_IMAGE_MAX_PIXELS", "1000000")
    reqs = [
        request(1, "<image> Что это?", {"visual": [image_ref(huge, 1)]}),
        request(2, "<image> Что это?", {"visual": [image_ref(png((30, 20)), 2)]}),
    ]
    before = len(FAILURES.items)
    answers = lm.generate_until(reqs, disable_tqdm=True)
    assert FAILURES.items[before:] == [] and all(isinstance(a, str) for a in answers)
    # Past the decode ceiling (lowered here) only that request fails, naming task, doc, field.
    monkeypatch.setattr("lm_eval_patches.media.image.DECODE_CEILING_PIXELS", 10_000_000)
    answers = lm.generate_until(reqs, disable_tqdm=True)
    (failure,) = FAILURES.items[before:]
    assert failure.doc == "id-1" and "task t, doc 1, field inputs.image" in failure.reason
    assert is_failure(answers[0]) and isinstance(answers[1], str)


def test_batch_sizes_one_and_two_give_the_same_greedy_answers(
    lm: MeraHFMultimodalLM, monkeypatch
) -> None:
    """Greedy answers do not depend on how requests are batched (left padding, masks)."""
    reqs = [
        request(1, "<image> Что изображено? Ответ:", {"visual": [image_ref(png((100, 50)), 1)]}),
        request(2, "Вопрос без картинки, подлиннее. Ответ:", {}),
        request(3, "<image> Какой цвет?", {"visual": [image_ref(png((30, 60), "green"), 3)]}),
        request(4, "<image> и <image>", {"visual": [image_ref(png((64, 64)), 4)] * 2}),
    ]
    spy = ProcessorSpy(lm.processor)
    monkeypatch.setattr(lm, "processor", spy)
    monkeypatch.setattr(lm, "batch_size_per_gpu", 2)
    in_pairs = lm.generate_until(reqs, disable_tqdm=True)
    paired_calls, spy.calls[:] = list(spy.calls), []
    monkeypatch.setattr(lm, "batch_size_per_gpu", 1)
    one_by_one = lm.generate_until(reqs, disable_tqdm=True)
    # The batches really differed: two prompts per processor call, then one.
    assert max(len(call["text"]) for call in paired_calls) == 2
    assert all(len(call["text"]) == 1 for call in spy.calls)
    assert not any(is_failure(a) for a in in_pairs)
    assert one_by_one == in_pairs
