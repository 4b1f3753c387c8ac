"""DialogueTask: ruTiE's ``_gen`` variants, whose questions are asked as one dialogue.

ruTiE (MERA_SPEC 6) holds a few long dialogues; a later question may refer to earlier ones, so
the model must see the earlier questions and **its own** earlier answers. lm-eval builds every
request before it runs any, so a request cannot be final when it is built. This task therefore
builds each request twice:

1. when lm-eval asks (``construct_requests``): the question without history, plus a
   :class:`DialogueSlot` on the Instance (``instance.mera_dialogue``) naming the dialogue, the
   position in it and the history window;
2. when the dialogue runner (``models/dialogue_runner.py``) is about to send it: again, with the
   previous ``N`` questions of the same dialogue (``--num_fewshot N``, the original's meaning;
   0 = none) and the model's answers to them, extracted by ``answers.extract_answer``.

History turns carry the earlier question's real text, options and media (the original sent its
raw template, B1). With ``--apply_chat_template --fewshot_as_multiturn`` they are user/assistant
turns before the question; otherwise they are compact blocks ending in ``Ответ: X`` put where the
instruction has ``<context>`` (or before the instruction when it has none or when ``<context>``
comes after a media slot, so media stay in slot order). The slot itself never reaches the model.

Dialogue and position come from the data (B8): ``meta.dialog_id``/``meta.question_id`` when the
records have them, else the test split sorted by ``meta.id`` cut into ``mera.dialogues`` equal
contiguous parts (the datasets' cards: three dialogues). ``meta.id`` stays as it is, so the
submission keeps the original ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from lm_eval_patches.answers import extract_answer, option_labels
from lm_eval_patches.errors import UserError
from lm_eval_patches.failures import FAILURES, is_failure
from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.tasks.prompt import PLACEHOLDER_RE, drop_context_slot, escape_media_slots
from lm_eval_patches.tasks.task import MeraTask

# What the history shows for an earlier question whose answer could not be read / was not asked.
NO_ANSWER = "[ответ не распознан]"
NOT_ASKED = "[вопрос не задавался в этом запуске]"
_CONTEXT_SLOTS = ("<context>", "{context}")


@dataclass
class DialogueSlot:
    """Where a request sits in its dialogue; set on ``Instance.mera_dialogue``.

    ``history`` is what the request was last built with: one entry per earlier question
    (``{"id", "text", "media": [sha256...], "answer"}``); ``history_key`` is its sha256, for
    cache keys; ``answer`` is what was extracted from this request's own reply."""

    task: DialogueTask
    dialogue: int
    position: int
    window: int
    history: list[dict[str, Any]] = field(default_factory=list)
    history_key: str = ""
    answer: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.task.config.task, self.dialogue)


class DialogueTask(MeraTask):
    """A MERA task asked as dialogues (``mera.dialogues: 3`` in its YAML)."""

    def __init__(self, config: dict | None = None, **kwargs: Any) -> None:
        config = dict(config or {})
        options = dict(config.get("mera") or {})
        self.dialogues = int(options.pop("dialogues", 1))
        config["mera"] = options
        self._window = 0
        self._ctx_kwargs: dict[str, Any] = {}
        self._shown: dict[str, str] = {}  # meta.id of a history doc -> the answer shown
        self._inline: list[tuple[dict, str]] = []  # plain mode: history blocks of the current doc
        self._current: str | None = None
        super().__init__(config=config, **kwargs)

    # -- dialogue structure -------------------------------------------------------------------
    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().download(dataset_kwargs, **kwargs)
        docs = list(self.dataset[self.config.test_split])
        self._places, self._turns = dialogue_places(
            docs, self.dialogues, self.config.task, self.doc_label
        )

    def place(self, doc: dict) -> tuple[int, int]:
        """(dialogue, position) of a test doc."""
        return self._places[self.doc_label(doc)]

    def earlier(self, doc: dict, window: int) -> list[dict]:
        """The previous ``window`` docs of ``doc``'s dialogue, oldest first."""
        dialogue, position = self.place(doc)
        return self._turns[dialogue][max(0, position - window) : position]

    # -- prompts ------------------------------------------------------------------------------
    def _prompt_text(self, doc: dict, doc_to_text: Any = None) -> str:
        return drop_context_slot(super()._prompt_text(doc, doc_to_text))

    def doc_to_text(self, doc: dict, doc_to_text: Any = None) -> str:
        label = self.doc_label(doc)
        if label in self._shown and label != self._current:
            return self.history_text(doc)
        if label == self._current and self._inline:
            return self._with_inline_history(doc)
        return super().doc_to_text(doc, doc_to_text)

    def doc_to_target(self, doc: dict, doc_to_target: Any = None) -> Any:
        label = self.doc_label(doc)
        if label in self._shown and label != self._current:
            return self._shown[label]
        return super().doc_to_target(doc, doc_to_target)

    def history_text(self, doc: dict, answer: str | None = None) -> str:
        """An earlier question as a history turn: its media slots, question and options
        (and ``Ответ: X`` when ``answer`` is given, the plain-prompt block)."""
        inputs = doc.get("inputs") or {}
        slots = " ".join(
            f"<{kind}>" for name, kind in self.media_field_kinds.items() if inputs.get(name)
        )
        lines = [slots] if slots else []
        if inputs.get("question"):
            lines.append(escape_media_slots(str(inputs["question"])))
        for label in option_labels(inputs):
            lines.append(f"{label}. {escape_media_slots(str(inputs[f'option_{label.lower()}']))}")
        if answer is not None:
            lines.append(f"Ответ: {answer}")
        return "\n".join(lines)

    def _with_inline_history(self, doc: dict) -> str:
        blocks = "\n\n".join(self.history_text(d, a) for d, a in self._inline)
        text = MeraTask._prompt_text(self, doc)  # with its <context> slot, if any
        at = min((text.find(s) for s in _CONTEXT_SLOTS if s in text), default=-1)
        first_media = next(PLACEHOLDER_RE.finditer(text), None)
        if at >= 0 and (first_media is None or at < first_media.start()):
            rest = drop_context_slot(text[at:]).lstrip()
            return f"{text[:at].rstrip()}\n{blocks}\n\n{rest}"
        return blocks + "\n\n" + drop_context_slot(text)

    # -- requests -----------------------------------------------------------------------------
    def fewshot_context(self, doc: dict, num_fewshot: int, *args: Any, **kwargs: Any) -> Any:
        # --num_fewshot is the history window here, never shots drawn from a split.
        self._window = max(0, int(num_fewshot or 0))
        names = ("system_instruction", "apply_chat_template", "fewshot_as_multiturn")
        self._ctx_kwargs = {**dict(zip(names, args, strict=False)), **kwargs}
        return self.dialogue_context(doc, [])

    def dialogue_context(self, doc: dict, history: list[tuple[dict, str]]) -> Any:
        """The prompt of ``doc`` with ``history`` ((earlier doc, answer shown), oldest first)."""
        kw = self._ctx_kwargs
        multiturn = bool(
            kw.get("apply_chat_template")
            and kw.get("fewshot_as_multiturn")
            and kw.get("chat_template")
        )
        self._current = self.doc_label(doc)
        self._shown = {self.doc_label(d): a for d, a in history}
        self._inline = [] if multiturn else list(history)
        original = getattr(self, "sampler", None) and self.sampler.sample
        try:
            if multiturn and history and original:
                self.sampler.sample = lambda *a, **k: [d for d, _ in history]
                ctx = ConfigurableTask.fewshot_context(self, doc, len(history), **kw)
            else:
                ctx = ConfigurableTask.fewshot_context(self, doc, 0, **kw)
        finally:
            if original:
                self.sampler.sample = original
            self._shown, self._inline, self._current = {}, [], None
        self._fewshot_used = [d for d, _ in history]  # their media go first, in order
        return ctx

    def construct_requests(self, doc: dict, ctx: Any, **kwargs: Any) -> Instance:
        # This history-less build is never sent: the runner rebuilds every dialogue request
        # before sending it, and a failure is recorded then, once.
        start = len(FAILURES.items)
        instance = super().construct_requests(doc, ctx, **kwargs)
        del FAILURES.items[start:]
        self._fewshot_used = []
        dialogue, position = self.place(doc)
        instance.mera_dialogue = DialogueSlot(self, dialogue, position, self._window)
        return instance

    def rebuild(self, instance: Instance, answers: dict[int, str]) -> None:
        """Rebuild ``instance``'s arguments with its history, the answers given so far in its
        dialogue (position -> answer shown) filling the assistant turns."""
        slot: DialogueSlot = instance.mera_dialogue
        earlier = self.earlier(instance.doc, slot.window)
        first = slot.position - len(earlier)
        history = [(d, answers.get(first + i, NOT_ASKED)) for i, d in enumerate(earlier)]
        ctx = self.dialogue_context(instance.doc, history)
        fresh = MeraTask.construct_requests(self, instance.doc, ctx, metadata=instance.metadata)
        self._fewshot_used = []
        instance.arguments = fresh.arguments
        if hasattr(fresh, "mera_logged_media"):
            instance.mera_logged_media = fresh.mera_logged_media
        slot.history = [
            {
                "id": self.doc_label(d),
                "text": self.history_text(d),
                "media": self._media_hashes(d),
                "answer": a,
            }
            for d, a in history
        ]
        slot.history_key = hashlib.sha256(
            json.dumps(slot.history, ensure_ascii=False, sort_keys=True).encode()
        ).hexdigest()

    def _media_hashes(self, doc: dict) -> list[str]:
        try:
            return [ref.sha256 for ref in self.doc_media(doc)]
        except MediaError as err:  # its request failed already and says why
            return [f"unreadable: {err}"]

    def shown_answer(self, doc: dict, reply: Any) -> str:
        """What later questions show as the model's answer to ``doc``: the option letter read
        from ``reply`` by the project's extractor, or :data:`NO_ANSWER`."""
        if not isinstance(reply, str) or is_failure(reply):
            return NO_ANSWER
        found = extract_answer(reply, labels=option_labels(doc.get("inputs")), kind="choice")
        return found.value or NO_ANSWER

    def apply_filters(self) -> Any:
        """Also puts each question's dialogue record (history asked with, extracted answer)
        into its logged arguments, after every model call is over."""
        outcome = super().apply_filters()
        for instance in getattr(self, "_instances", None) or []:
            slot = getattr(instance, "mera_dialogue", None)
            if slot is not None:
                record = {
                    "dialogue": slot.dialogue,
                    "position": slot.position,
                    "history": slot.history,
                    "history_key": slot.history_key,
                    "extracted_answer": slot.answer,
                }
                instance.arguments = (*instance.arguments, {"mera_dialogue": record})
        return outcome


def dialogue_places(
    docs: list[dict], count: int, task: str, label: Any = None
) -> tuple[dict[str, tuple[int, int]], list[list[dict]]]:
    """(doc label -> (dialogue, position), docs of each dialogue in order) for a test split.

    Uses ``meta.dialog_id``/``meta.question_id`` when every record has them; otherwise sorts by
    ``meta.id`` and cuts into ``count`` equal contiguous dialogues. UserError naming the task
    when ids are missing or repeated, or the split does not divide into ``count``."""
    label = label or (lambda d: str((d.get("meta") or {}).get("id", "?")))
    metas = [d.get("meta") or {} for d in docs]
    if docs and all("dialog_id" in m and "question_id" in m for m in metas):
        keyed = sorted(
            zip(metas, docs, strict=True), key=lambda p: (p[0]["dialog_id"], p[0]["question_id"])
        )
        turns: dict[int, list[dict]] = {}
        for meta, doc in keyed:
            turns.setdefault(int(meta["dialog_id"]), []).append(doc)
        ordered = [turns[k] for k in sorted(turns)]
    else:
        if any(m.get("id") is None for m in metas):
            raise UserError(f"task {task}: a test record has no meta.id (needed for its dialogue)")
        ids = [m["id"] for m in metas]
        if len(set(ids)) != len(ids):
            raise UserError(f"task {task}: meta.id repeats in the test split")
        if count < 1 or len(docs) % count:
            raise UserError(
                f"task {task}: {len(docs)} test records do not split into {count} dialogues "
                "of equal length (mera.dialogues in its YAML)"
            )
        size = len(docs) // count
        docs = sorted(docs, key=lambda d: d["meta"]["id"])
        ordered = [docs[i : i + size] for i in range(0, len(docs), size)]
    places = {label(d): (k, p) for k, turn in enumerate(ordered) for p, d in enumerate(turn)}
    return places, ordered
