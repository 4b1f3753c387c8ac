"""MeraTask: our ConfigurableTask for MERA Multi (use with ``class: !function`` in YAML).

What it adds to stock lm-eval: datasets resolved from a local mirror first; media kept lazy as
content-hashed MediaRefs (images, audio and video alike, which 0.4.13 cannot express); the
instruction filled from ``inputs`` with literal braces kept; placeholder/media checks that
name the task, doc and field; the LOAD_* switches; MERA scoring. Task YAMLs configure it
through a ``mera:`` block (removed before lm-eval's TaskConfig sees the config):

    mera:
      answer: letter | free | auto      # what the baseline answers (auto: letter if options)
      optional_media: [image]           # fields that may be absent; their slot is then dropped
      drop_context_slot: false          # ruTiE without history
      scoring: {kind: em, ignore_case: true, ignore_punctuation: true, group_by: meta.group_id,
                reasoning_delimiters: [["<think>", "</think>"]]}  # default: answers.py's list
"""

from __future__ import annotations

import json
import logging
import weakref
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from lm_eval_patches.answers import option_labels
from lm_eval_patches.failures import BUILD_ERROR_KEY, FAILURES
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.forms import load_mode, materialise, resize_from_env
from lm_eval_patches.media.ref import MediaRef, frame_refs
from lm_eval_patches.settings import RUN_OPTIONS
from lm_eval_patches.tasks.data import LoadedDataset, load_described, media_ref
from lm_eval_patches.tasks.prompt import (
    drop_context_slot,
    drop_media_slots,
    expand_video_slots,
    fill_instruction,
    order_fields_by_placeholders,
)
from lm_eval_patches.tasks.scoring import ScoringOptions, score_doc

log = logging.getLogger(__name__)

MEDIA_ARG_KEYS = {"image": "visual", "audio": "audio", "video": "video"}
MERA_OPTIONS = {"answer", "optional_media", "drop_context_slot", "scoring"}

# Live MERA tasks by name, so in-process backends (the baseline) can ask a task about a doc.
ACTIVE_TASKS: weakref.WeakValueDictionary[str, MeraTask] = weakref.WeakValueDictionary()


class MeraTask(ConfigurableTask):
    """A MERA Multi task; see the module docstring for its YAML options."""

    MULTIMODAL = True

    def __init__(self, config: dict | None = None, **kwargs: Any) -> None:
        config = dict(config or {})
        options = dict(config.pop("mera", None) or {})
        config.pop("class", None)
        unknown = set(options) - MERA_OPTIONS
        if unknown:
            raise ValueError(
                f"task {config.get('task')}: unknown key(s) {sorted(unknown)} in its mera: block "
                f"(known: {', '.join(sorted(MERA_OPTIONS))})"
            )
        self.answer_kind: str = options.get("answer", "free")
        self.drop_context: bool = bool(options.get("drop_context_slot", False))
        self.optional_media: set[str] = set(options.get("optional_media") or [])
        try:
            self.scoring = ScoringOptions.from_dict(options.get("scoring"))
        except (TypeError, ValueError) as err:
            raise ValueError(f"task {config.get('task')}: mera.scoring: {err}") from err
        self._loaded: LoadedDataset | None = None
        self._fewshot_used: list[dict] = []
        super().__init__(config=config, **kwargs)
        ACTIVE_TASKS[self.config.task] = self

    # -- data ---------------------------------------------------------------------------------
    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._loaded = load_described(self.config.task, self.DATASET_PATH, self.DATASET_NAME)
        self.dataset = self._loaded.described
        for split in (
            self.config.test_split,
            self.config.validation_split,
            self.config.training_split,
            self.config.fewshot_split,
        ):
            if split and split not in self.dataset:
                raise ValueError(
                    f"task {self.config.task}: split {split!r} is not in {self.DATASET_PATH} "
                    f"(splits: {', '.join(self.dataset)})"
                )

    @property
    def media_field_kinds(self) -> dict[str, str]:
        return self._loaded.media_fields if self._loaded else {}

    # -- prompt -------------------------------------------------------------------------------
    def doc_to_text(self, doc: dict, doc_to_text: Any = None) -> str:
        text = self._prompt_text(doc, doc_to_text)
        frames = RUN_OPTIONS.replace_videos_with_images_amount
        return expand_video_slots(text, frames) if frames else text

    def _prompt_text(self, doc: dict, doc_to_text: Any = None) -> str:
        """The filled prompt with its media slots as the dataset has them."""
        if doc_to_text is not None or self.config.doc_to_text is not None:
            return super().doc_to_text(doc, doc_to_text)
        inputs = doc.get("inputs") or {}
        text = fill_instruction(doc["instruction"], inputs, self.media_field_kinds)
        absent = [n for n in self.optional_media if inputs.get(n) is None]
        if absent:
            text = drop_media_slots(text, absent, self.media_field_kinds)
        return drop_context_slot(text) if self.drop_context else text

    def doc_to_target(self, doc: dict, doc_to_target: Any = None) -> Any:
        if doc_to_target is not None or self.config.doc_to_target is not None:
            return super().doc_to_target(doc, doc_to_target)
        return doc.get("outputs")

    def doc_label(self, doc: dict) -> str:
        """How errors name a doc: its ``meta.id`` (the id the MERA site knows)."""
        meta = doc.get("meta") or {}
        return str(meta.get("id", "?"))

    def doc_media(self, doc: dict) -> list[MediaRef]:
        """The doc's media in placeholder order; MediaError naming task, doc and field if off."""
        inputs = doc.get("inputs") or {}
        where = f"task {self.config.task}, doc {self.doc_label(doc)}"
        present, absent = {}, []
        for name, kind in self.media_field_kinds.items():
            descriptor = inputs.get(name)
            if descriptor is None:
                absent.append(name)
                continue
            if not descriptor.get("sha256"):
                raise MediaError(
                    kind, "the media cell has no bytes", f"{where}, field inputs.{name}"
                )
            present[name] = kind
        ordered, problem = order_fields_by_placeholders(self._prompt_text(doc), present)
        if problem:
            # Blame a missing media cell when the prompt has a slot for it, else the prompt.
            missing = [n for n in absent if n not in self.optional_media]
            field = f"inputs.{missing[0]}" if missing else "instruction"
            raise MediaError("request", problem, f"{where}, field {field}", action="build")
        return [
            media_ref(self._loaded, inputs[name], name, f"{where}, field inputs.{name}")
            for name in ordered
        ]

    # -- requests -----------------------------------------------------------------------------
    def fewshot_context(self, doc: dict, num_fewshot: int, *args: Any, **kwargs: Any) -> Any:
        # Remember which shots were drawn so their media go into the request too, in order.
        self._fewshot_used = []
        if num_fewshot > 0 and hasattr(self, "sampler"):
            original = self.sampler.sample

            def recording_sample(*a: Any, **k: Any) -> list:
                shots = list(original(*a, **k))
                self._fewshot_used.extend(shots)
                return shots

            self.sampler.sample = recording_sample
            try:
                return super().fewshot_context(doc, num_fewshot, *args, **kwargs)
            finally:
                self.sampler.sample = original
        return super().fewshot_context(doc, num_fewshot, *args, **kwargs)

    def construct_requests(self, doc: dict, ctx: Any, **kwargs: Any) -> Instance:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        try:
            media = self._request_media(doc)
        except MediaError as err:
            # One broken record must not sink the run: report it, and let the backend answer
            # the failure answer for this request (it sees the reason under "mera_error").
            FAILURES.record(self.config.task, self.doc_label(doc), str(err))
            media = {BUILD_ERROR_KEY: str(err)}
        gen_kwargs = dict(self.config.generation_kwargs or {})
        arguments = (ctx, gen_kwargs, media)
        if RUN_OPTIONS.pass_multimodal_args_to_chat_history and BUILD_ERROR_KEY not in media:
            arguments = self._chat_arguments(doc, ctx, gen_kwargs, media)
        return Instance(
            request_type="generate_until", doc=doc, arguments=arguments, idx=0, **kwargs
        )

    def _chat_arguments(self, doc: dict, ctx: Any, gen_kwargs: dict, media: dict) -> tuple:
        """Pass mode (the original's): the context becomes the chat messages with every medium
        inside its turn, and there is no media argument. Only chat-history contexts (API
        backends' JSON chat) can carry it; other backends keep the three-argument form."""
        prompt = getattr(ctx, "prompt", None)  # lm-eval's JsonChatStr
        if not isinstance(prompt, str):
            return (ctx, gen_kwargs, media)
        from lm_eval_patches.messages import ChatHistory, MessageError, build_messages

        try:
            chat = build_messages(
                json.loads(prompt), media, task=self.config.task, doc=self.doc_label(doc)
            )
        except MessageError as err:
            FAILURES.record(self.config.task, self.doc_label(doc), str(err))
            return (ctx, gen_kwargs, {BUILD_ERROR_KEY: str(err)})
        return (ChatHistory(chat), gen_kwargs)

    def _request_media(self, doc: dict) -> dict[str, list]:
        """Shot media first, then the doc's, in the form the LOAD_* switch asks for."""
        refs = [ref for shot in self._fewshot_used for ref in self.doc_media(shot)]
        refs += self.doc_media(doc)
        frames = RUN_OPTIONS.replace_videos_with_images_amount
        if frames:
            refs = [
                f
                for ref in refs
                for f in (frame_refs(ref, frames) if ref.kind == "video" else [ref])
            ]
        mode = load_mode() or (None if RUN_OPTIONS.backend_resolves_media else "LOAD_OBJECT")
        sizes = resize_from_env() if mode else {}
        media: dict[str, list] = {}
        for ref in refs:
            media.setdefault(MEDIA_ARG_KEYS[ref.kind], []).append(materialise(ref, mode, sizes))
        return media

    # -- scoring ------------------------------------------------------------------------------
    def process_results(self, doc: dict, results: list) -> dict[str, Any]:
        if "bypass" in self._metric_fn_list:
            return {"bypass": None}
        prediction = results[0] if results else ""
        if isinstance(prediction, list):  # filters without take_first keep a list
            prediction = prediction[0] if prediction else ""
        scores = score_doc(self.scoring, doc, str(prediction))
        return {name: value for name, value in scores.items() if name in self._metric_fn_list}

    # -- for the baseline ---------------------------------------------------------------------
    def answer_options(self, doc: dict) -> list[str]:
        """Letters of the non-empty ``option_*`` inputs (A, B, ...) of a choice task."""
        return option_labels(doc.get("inputs"))

    def shot_answers(self) -> list[str]:
        """Gold answers of the few-shot split (what a free-form baseline draws on)."""
        split = (
            self.config.fewshot_split or self.config.validation_split or self.config.training_split
        )
        if not split or split not in self.dataset:
            return []
        return [str(v) for v in self.dataset[split]["outputs"] if v not in (None, "")]
