"""``hf-multimodal``: upstream's HFMultimodalLM, fed with MERA's lazy media.

What differs from upstream ``lm_eval.models.hf_vlms.HFMultimodalLM``:

- requests carry :class:`MediaRef` items or any LOAD_* form (PIL images, bytes, data URLs, file
  dicts); they are decoded (upright 8-bit RGB, alpha on white, within ``image_max_pixels``) and
  resized a window of requests at a time, not a whole task at once;
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
from lm_eval_patches.errors import SettingsError
from lm_eval_patches.failures import FAILURES, build_failure_answer, failed_at_build
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.forms import ref_from_form
from lm_eval_patches.media.image import (
    check_resize_args,
    fit_pixels,
    max_pixels,
    resize_image,
    to_rgb,
)
from lm_eval_patches.models.hf_scaling import adopt_data_parallel, tensor_parallel_kwargs
from lm_eval_patches.models.local_requests import doc_label, optional_int
from lm_eval_patches.registration import import_upstream

HFMultimodalLM = import_upstream("hf-multimodal", "lm_eval.models.hf_vlms", "HFMultimodalLM")


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
        image_max_pixels: int | str | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        sizes = {
            "width": optional_int("hf-multimodal", "image_width", image_width),
            "height": optional_int("hf-multimodal", "image_height", image_height),
            "max_side": optional_int("hf-multimodal", "image_max_side", image_max_side),
        }
        try:  # before loading weights, so a bad combination fails fast
            check_resize_args(**sizes)
        except ValueError as exc:
            hint = ""
            if "combined" in str(exc):
                hint = "; pass image_max_side alone, or image_width and/or image_height"
            raise SettingsError(f"hf-multimodal --model_args: {exc}{hint}") from exc
        # The decode budget (MERA_IMAGE_MAX_PIXELS when not given), checked before loading too.
        budget = optional_int("hf-multimodal", "image_max_pixels", image_max_pixels)
        max_pixels(budget)
        if device is None:
            # Upstream defaults to "cuda" even on machines without one.
            device = "cuda" if torch.cuda.is_available() else "cpu"
        # Upstream's own image_* fields stay None: it would otherwise resize a second time by
        # its rules, which differ from the original project's (e.g. upscaling by max_side).
        kwargs = tensor_parallel_kwargs(kwargs)
        super().__init__(pretrained, device=device, **kwargs)
        adopt_data_parallel(self, kwargs.get("tp_plan"))
        self.mera_image_sizes: dict[str, int | None] = sizes
        self.mera_max_pixels: int | None = budget

    # -- media ---------------------------------------------------------------------------------
    def resolve_image(self, item: Any) -> Any:
        """A PIL image for one ``visual`` item, resized by the MERA rules.

        Accepts every form the project produces: MediaRefs (decoded lazily; MediaError on bad
        bytes, naming task/doc/field), PIL images (LOAD_OBJECT or other producers: normalised
        to RGB), bytes (LOAD_BYTES), ``{"url": data URL}`` (LOAD_BASE64) and file dicts
        (LOAD_FILES).
        """
        from PIL import Image

        sizes = self.mera_image_sizes
        budget = getattr(self, "mera_max_pixels", None)
        if isinstance(item, Image.Image):
            return resize_image(fit_pixels(to_rgb(item), max_pixels(budget)), **sizes)
        return ref_from_form(item, "image").as_pil(**sizes, max_pixels=budget)

    def _prepared(self, request: Instance) -> tuple[Instance | None, str | None]:
        """The request with its visuals as resized PIL images, or None and why it can't be."""
        aux = request.args[2] if isinstance(request.args[2], dict) else {}
        for key in ("audio", "video"):
            if aux.get(key):
                return None, f"hf-multimodal passes only images to the model; the request has {key}"
        try:
            images = [self.resolve_image(item) for item in aux.get("visual") or []]
        except (MediaError, TypeError) as err:
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
                    answers[index] = build_failure_answer(request.args)
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
