"""``hf-multimodal``: upstream's HFMultimodalLM, fed with MERA's lazy media.

What differs from upstream ``lm_eval.models.hf_vlms.HFMultimodalLM``:

- requests carry :class:`MediaRef` items (or PIL images / raw bytes from the LOAD_* switches);
  they are decoded and resized a window of requests at a time, not a whole task at once;
- ``image_width`` / ``image_height`` / ``image_max_side`` follow the original project's resize
  rules (``lm_eval_patches.media.image``), applied once, instead of upstream's;
- a request whose media cannot be decoded is recorded in ``FAILURES`` and answered with the
  failure answer, while the rest of its batch is generated normally;
- requests carrying audio or video (which this image-only backend cannot pass on) fail the
  same way instead of being answered silently without their media;
- ``device`` defaults to CPU when CUDA is not available;
- with ``--use_cache``, each answer is stored under its exact request (media included) as soon
  as upstream produces it.

Everything else (chat templates, ``<image>`` interleaving, batching, stopping) is upstream's.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from lm_eval.api.instance import Instance
from tqdm import tqdm

from lm_eval_patches.cache.caching_lm import answers_in_order
from lm_eval_patches.failures import FAILED_ANSWER, FAILURES, failed_at_build
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.image import check_resize_args, decode_image, resize_image
from lm_eval_patches.media.ref import MediaRef
from lm_eval_patches.registration import import_upstream

HFMultimodalLM = import_upstream("hf-multimodal", "lm_eval.models.hf_vlms", "HFMultimodalLM")


def _optional_int(name: str, value: Any) -> int | None:
    """A model arg as int or None (the CLI may hand over "None", "" or "20")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def doc_label(request: Instance) -> str:
    """How failures name a request's doc: its ``meta.id``, else lm-eval's doc index."""
    doc = request.doc if isinstance(request.doc, dict) else {}
    meta = doc.get("meta") or {}
    return str(meta.get("id", request.doc_id))


class MeraHFMultimodalLM(HFMultimodalLM):
    """HF vision-language models (``AutoModelForImageTextToText``) on MERA requests."""

    MULTIMODAL = True
    # Requests whose images are decoded at a time (see generate_until).
    MEDIA_WINDOW = 256

    def __init__(
        self,
        pretrained: Any,
        image_width: int | str | None = None,
        image_height: int | str | None = None,
        image_max_side: int | str | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        sizes = {
            "width": _optional_int("image_width", image_width),
            "height": _optional_int("image_height", image_height),
            "max_side": _optional_int("image_max_side", image_max_side),
        }
        check_resize_args(**sizes)  # before loading weights, so a bad combination fails fast
        if device is None:
            # Upstream defaults to "cuda" even on machines without one.
            device = "cuda" if torch.cuda.is_available() else "cpu"
        # Upstream's own image_* fields stay None: it would otherwise resize a second time by
        # its rules, which differ from the original project's (e.g. upscaling by max_side).
        super().__init__(pretrained, device=device, **kwargs)
        self.mera_image_sizes: dict[str, int | None] = sizes

    # -- media ---------------------------------------------------------------------------------
    def resolve_image(self, item: Any) -> Any:
        """A PIL image for one ``visual`` item, resized by the MERA rules.

        MediaRefs decode lazily (MediaError on bad bytes, naming task/doc/field); PIL images
        from other producers pass through the same resize; raw bytes (LOAD_BYTES) are decoded.
        """
        sizes = self.mera_image_sizes
        if isinstance(item, MediaRef):
            return item.as_pil(**sizes)
        if isinstance(item, (bytes, bytearray)):
            return resize_image(decode_image(bytes(item)), **sizes)
        from PIL import Image

        if isinstance(item, Image.Image):
            return resize_image(item, **sizes)
        raise TypeError(
            f"hf-multimodal cannot use a visual of type {type(item).__name__}; expected a "
            "MediaRef, a PIL image or image bytes (unset LOAD_BASE64/LOAD_FILES for this backend)"
        )

    def _prepared(self, request: Instance) -> tuple[Instance | None, str | None]:
        """The request with its visuals as resized PIL images, or None and why it can't be."""
        aux = request.args[2] if isinstance(request.args[2], dict) else {}
        for key in ("audio", "video"):
            if aux.get(key):
                return None, f"hf-multimodal passes only images to the model; the request has {key}"
        try:
            images = [self.resolve_image(item) for item in aux.get("visual") or []]
        except MediaError as err:
            return None, str(err)
        # A shallow copy: the original keeps its MediaRefs, so logged samples stay small.
        # Text-only docs get "visual": [] too, as upstream indexes that key unconditionally.
        prepared = copy.copy(request)
        prepared.arguments = (*request.args[:2], {**aux, "visual": images}, *request.args[3:])
        return prepared, None

    def tok_batch_multimodal_encode(
        self, strings: list[str], images: list[list], *args: Any, **kwargs: Any
    ) -> Any:
        """Upstream's batch encoding, minus empty image tensors.

        For a batch without any image, processors still return an empty ``pixel_values``,
        and LLaVA-style models then run the vision tower on it and crash.
        """
        encoding = super().tok_batch_multimodal_encode(strings, images, *args, **kwargs)
        if not any(images):
            for key in [
                k
                for k, v in encoding.items()
                if k not in ("input_ids", "attention_mask")
                and isinstance(v, torch.Tensor)
                and v.numel() == 0
            ]:
                del encoding[key]
        return encoding

    # -- requests ------------------------------------------------------------------------------
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """Upstream generation for requests whose media decode; failure answers for the rest.

        Requests go to upstream in windows of ``MEDIA_WINDOW``: upstream wants decoded images in
        the requests, and decoding a whole task at once could hold gigabytes of pixels.
        """
        if not requests or len(requests[0].args) < 3:
            return super().generate_until(requests, disable_tqdm=disable_tqdm)

        answers: list[str] = [""] * len(requests)
        pbar = tqdm(
            total=len(requests),
            disable=disable_tqdm or self.rank != 0,
            desc="Running generate_until requests with text+image input",
        )
        for start in range(0, len(requests), self.MEDIA_WINDOW):
            window = requests[start : start + self.MEDIA_WINDOW]
            ready: list[tuple[int, Instance]] = []
            for index, request in enumerate(window, start):
                if failed_at_build(request.args):
                    answers[index] = FAILED_ANSWER
                    continue
                prepared, problem = self._prepared(request)
                if prepared is None:
                    answers[index] = FAILURES.record(
                        request.task_name, doc_label(request), str(problem)
                    )
                else:
                    ready.append((index, prepared))
            if ready:
                # Upstream reports each answer through cache_hook.add_partial by its text
                # only; map those reports to these exact requests (see cache.caching_lm).
                with answers_in_order(self, [requests[index] for index, _ in ready]):
                    outputs = super().generate_until([r for _, r in ready], disable_tqdm=True)
                for (index, _), output in zip(ready, outputs, strict=True):
                    answers[index] = output
            pbar.update(len(window))
        pbar.close()
        return answers
