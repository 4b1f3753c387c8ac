"""Record checks: fields and types, placeholders, numbered media keys, ids, shots, golds.

Rules from MERA's dataset format (``dataset_formatting``): every record has ``instruction``,
``inputs``, ``outputs`` and ``meta`` (with an int ``id`` numbered across shots and test
together); the instruction's ``{field}`` slots match the text keys of ``inputs`` exactly and its
``<image>``/``<audio_1>``... slots match the media keys; several media of one kind are numbered
``_1``, ``_2``... from 1; options are ``option_a``, ``option_b``... with no gaps; shots repeat no
test item or media; private test splits carry no golds; prompts state the format and do not end
in stray spaces or newlines.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import defaultdict
from typing import Any

from lm_eval_patches.dataset_check.layout import Item, media_kind
from lm_eval_patches.dataset_check.report import ERROR, WARNING, Report
from lm_eval_patches.tasks.prompt import PLACEHOLDER_RE

TEXT_SLOT_RE = re.compile(r"\{(\w+)\}")
OPTION_RE = re.compile(r"^option_([a-z])$")
# Filled by the harness, not by ``inputs``: the dialogue history of ruTiE.
RESERVED_SLOTS = {"context"}


def resolve_instruction(item: Item, prompts: list[str] | None, report: Report) -> str | None:
    """The prompt text of ``item`` (an int instruction indexes ``raw_dataset_meta.prompts``)."""
    instruction = item.record.get("instruction")
    if isinstance(instruction, int) and not isinstance(instruction, bool):
        if prompts is None or not 0 <= instruction < len(prompts):
            count = "no prompts list" if prompts is None else f"{len(prompts)} prompts"
            report.add(
                "fields",
                ERROR,
                f"instruction is prompt index {instruction} but raw_dataset_meta.json has {count}",
                **item.where("instruction"),
            )
            return None
        return prompts[instruction]
    return instruction if isinstance(instruction, str) else None


def check_fields(item: Item, instruction: str | None, report: Report) -> bool:
    """Required fields and their types; returns False when the record is too broken to go on."""
    record, ok = item.record, True
    if "_not_a_dict" in record:
        report.add("fields", ERROR, "the record is not a JSON object", **item.where())
        return False
    for name, kinds, label in (
        ("instruction", (str, int), "a string (or a prompt index in the source layout)"),
        ("inputs", (dict,), "an object"),
        ("outputs", (str, list), "a string (a list of strings for several golds)"),
        ("meta", (dict,), "an object"),
    ):
        if name not in record:
            report.add("fields", ERROR, f"missing field {name!r}", **item.where(name))
            ok = False
        elif not isinstance(record[name], kinds) or isinstance(record[name], bool):
            got = type(record[name]).__name__
            report.add("fields", ERROR, f"{name} must be {label}, got {got}", **item.where(name))
            ok = False
    outputs = record.get("outputs")
    if isinstance(outputs, list) and not all(isinstance(o, str) for o in outputs):
        report.add("fields", ERROR, "outputs list holds non-strings", **item.where("outputs"))
    meta = record.get("meta")
    if isinstance(meta, dict):
        doc_id = meta.get("id")
        if not isinstance(doc_id, int) or isinstance(doc_id, bool):
            report.add(
                "fields", ERROR, f"meta.id must be an int, got {doc_id!r}", **item.where("meta.id")
            )
    if instruction is not None and not instruction.strip():
        report.add("fields", ERROR, "instruction is empty", **item.where("instruction"))
        ok = False
    return ok and instruction is not None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_placeholders(item: Item, instruction: str, report: Report) -> None:
    """Text slots match the text inputs exactly; media slots match the media inputs.

    A text input that is empty and unused is allowed (hub schemas are the union over items, so
    UniScienceVQA pads ``option_f``... with ""). A media slot whose field exists but is empty is
    optional media (ruTiE turns without a picture): a warning, the task must drop the slot.
    """
    inputs: dict[str, Any] = item.record["inputs"]
    media_keys = [k for k in inputs if media_kind(k)]
    misnamed = {k for k in inputs if not media_kind(k) and isinstance(inputs[k], dict)}
    for name in sorted(misnamed):
        report.add(
            "media_keys",
            ERROR,
            f"inputs.{name} holds media but media fields are named image, audio or video "
            "(numbered image_1, image_2... when there are several)",
            **item.where(f"inputs.{name}"),
        )
    text_keys = {k for k in inputs if not media_kind(k)} - misnamed
    slots = set(TEXT_SLOT_RE.findall(instruction))
    # Literal braces ({5} in a maths prompt) are not slots; {context} is ruTiE's history slot,
    # filled by the harness when no input of that name exists.
    slots = {s for s in slots if not s.isdigit()} - (RESERVED_SLOTS - text_keys)
    for name in sorted(slots - text_keys):
        report.add(
            "placeholders",
            ERROR,
            f"instruction has slot {{{name}}} but inputs has no text field {name!r}",
            **item.where("instruction"),
        )
    for name in sorted(text_keys - slots):
        if _empty(inputs[name]):
            continue
        report.add(
            "placeholders",
            ERROR,
            f"inputs.{name} is not used by the instruction (no {{{name}}} slot)",
            **item.where(f"inputs.{name}"),
        )
    for name in sorted(text_keys):
        value = inputs[name]
        if isinstance(value, str) and PLACEHOLDER_RE.search(value):
            slot = PLACEHOLDER_RE.search(value).group(0)
            report.add(
                "placeholders",
                WARNING,
                f"inputs.{name} holds the media placeholder {slot}: once filled, the prompt "
                "has more media slots than media",
                **item.where(f"inputs.{name}"),
            )
    check_media_keys(item, media_keys, report)
    found = [(m.group(1), m.group(2)) for m in PLACEHOLDER_RE.finditer(instruction)]
    present = [k for k in media_keys if inputs[k] is not None]
    empty = [k for k in media_keys if inputs[k] is None]
    for kind in ("image", "audio", "video"):
        keys = [k for k in present if media_kind(k) == kind]
        slots_of_kind = [(k, n) for k, n in found if k == kind]
        numbered = {f"{kind}_{n}" for k, n in slots_of_kind if n}
        bare = sum(1 for _, n in slots_of_kind if not n)
        for key in sorted(numbered - set(keys)):
            _slot_without_media(item, key, key in empty, report)
        rest = [k for k in keys if k not in numbered]
        optional = [k for k in empty if media_kind(k) == kind and k not in numbered]
        if bare > len(rest) and bare - len(rest) <= len(optional):
            for key in optional[: bare - len(rest)]:
                _slot_without_media(item, key, True, report)
        elif bare != len(rest):
            report.add(
                "placeholders",
                ERROR,
                f"instruction has {bare} bare <{kind}> slot(s) for {len(rest)} {kind} field(s) "
                f"({', '.join(rest) or 'none'}); each media field needs exactly one placeholder",
                **item.where("instruction"),
            )


def _slot_without_media(item: Item, key: str, declared: bool, report: Report) -> None:
    if declared:
        report.add(
            "placeholders",
            WARNING,
            f"inputs.{key} is empty but the instruction keeps its placeholder "
            "(optional media: the task must drop the slot, as ruTiE's does)",
            **item.where(f"inputs.{key}"),
        )
    else:
        report.add(
            "placeholders",
            ERROR,
            f"instruction has a <{key}> slot but inputs has no {key!r} field",
            **item.where("instruction"),
        )


def check_media_keys(item: Item, keys: list[str], report: Report) -> None:
    """Several media of a kind are ``kind_1``, ``kind_2``... from 1, never mixed with ``kind``."""
    for kind in ("image", "audio", "video"):
        mine = [k for k in keys if media_kind(k) == kind]
        numbers = sorted(int(k.rsplit("_", 1)[1]) for k in mine if "_" in k)
        if kind in mine and numbers:
            report.add(
                "media_keys",
                ERROR,
                f"inputs mixes {kind!r} with numbered {kind}_N keys",
                **item.where("inputs"),
            )
        if numbers and numbers != list(range(1, len(numbers) + 1)):
            report.add(
                "media_keys",
                ERROR,
                f"numbered {kind} keys must run {kind}_1..{kind}_{len(numbers)}, got "
                + ", ".join(f"{kind}_{n}" for n in numbers),
                **item.where("inputs"),
            )
        if len(numbers) == 1:
            report.add(
                "media_keys",
                WARNING,
                f"a single {kind} is named {kind}_{numbers[0]}; use {kind!r}",
                **item.where("inputs"),
            )


def check_options(item: Item, report: Report) -> list[str]:
    """``option_a``... without gaps; returns the option letters (upper case)."""
    inputs = item.record["inputs"]
    letters = sorted(m.group(1) for k in inputs if (m := OPTION_RE.match(k)) is not None)
    filled = [c for c in letters if not _empty(inputs[f"option_{c}"])]
    expected = list(string.ascii_lowercase[: len(letters)])
    if letters != expected or filled != expected[: len(filled)]:
        report.add(
            "options",
            ERROR,
            f"options must be option_a..option_{expected[-1] if expected else 'a'} with no gaps, "
            f"got {', '.join('option_' + c for c in filled)}",
            **item.where("inputs"),
        )
    return [c.upper() for c in filled]


def check_prompt_ending(item: Item, instruction: str, report: Report) -> None:
    """No stray spaces or newlines after the last word ("Ответ:" must end the prompt)."""
    if instruction != instruction.rstrip():
        tail = repr(instruction[len(instruction.rstrip()) :])
        report.add(
            "prompt_ending",
            WARNING,
            f"instruction ends with whitespace {tail} (end the prompt at e.g. 'Ответ:')",
            **item.where("instruction"),
        )
    if "\\n" in instruction:
        report.add(
            "prompt_ending",
            WARNING,
            "instruction holds a literal backslash-n (two characters), not a line break",
            **item.where("instruction"),
        )


def item_fingerprint(item: Item, instruction: str) -> str:
    """A hash of the prompt, the text inputs and the media bytes: equal for a repeated item."""
    inputs = item.record["inputs"]
    texts = [f"{k}={v}" for k, v in sorted(inputs.items()) if not media_kind(k)]
    media = [hashlib.sha256(c.data).hexdigest() for c in item.media if c.data]
    return hashlib.sha256("\x1f".join([instruction, *texts, *media]).encode()).hexdigest()


class SplitTracker:
    """Cross-record rules: unique ids, shots vs test, golds and access."""

    def __init__(self) -> None:
        self.ids: dict[tuple, list[Item]] = defaultdict(list)
        self.texts: dict[tuple, dict[str, list[Item]]] = defaultdict(lambda: defaultdict(list))
        self.golds: dict[str, int] = defaultdict(int)
        self.counts: dict[str, int] = defaultdict(int)
        self.empty_test_golds: list[Item] = []
        self.filled_test_golds: list[Item] = []

    def add(self, item: Item, instruction: str) -> None:
        self.counts[item.split] += 1
        if item.doc_id is not None:
            self.ids[(item.config, item.doc_id)].append(item)
        self.texts[item.config][item_fingerprint(item, instruction)].append(item)
        outputs = item.record.get("outputs")
        has_gold = bool(outputs) and any(str(o).strip() for o in _as_list(outputs))
        if item.split == "test":
            (self.filled_test_golds if has_gold else self.empty_test_golds).append(item)
        elif not has_gold:
            self.golds["shots_without_gold"] += 1

    def finish(self, report: Report, access: str | None) -> None:
        for (_, doc_id), items in self.ids.items():
            if len(items) > 1:
                places = "; ".join(f"{i.split} #{i.index}" for i in items)
                report.add(
                    "ids",
                    ERROR,
                    f"meta.id {doc_id} is used {len(items)} times ({places}); ids must be "
                    "unique across shots and test",
                    **items[1].where("meta.id"),
                )
        for by_text in self.texts.values():
            for items in by_text.values():
                splits = {i.split for i in items}
                if splits == {"shots", "test"}:
                    test = next(i for i in items if i.split == "test")
                    shot = next(i for i in items if i.split == "shots")
                    report.add(
                        "shots",
                        ERROR,
                        f"shot {shot.doc_id} repeats this test item's prompt and inputs",
                        **test.where(),
                    )
        if self.golds["shots_without_gold"]:
            report.add(
                "golds",
                ERROR,
                f"{self.golds['shots_without_gold']} shot(s) have no gold answer "
                "(shots are examples: they need one)",
                split="shots",
            )
        filled, empty = self.filled_test_golds, self.empty_test_golds
        if access == "private" and filled:
            report.add(
                "golds",
                ERROR,
                f"private set: {len(filled)} test item(s) carry golds (hide them: outputs = '')",
                **filled[0].where("outputs"),
            )
        elif access == "public" and empty:
            report.add(
                "golds",
                ERROR,
                f"public set: {len(empty)} test item(s) have no gold",
                **empty[0].where("outputs"),
            )
        elif access is None and filled and empty:
            report.add(
                "golds",
                ERROR,
                f"{len(empty)} test item(s) have no gold while {len(filled)} do "
                "(all hidden for a private set, all present for a public one)",
                **empty[0].where("outputs"),
            )


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]
