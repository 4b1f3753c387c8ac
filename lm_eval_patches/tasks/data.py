"""Dataset loading for MERA tasks: local mirror first, lazy media, hashes computed once.

``MERA_DATA_DIR`` points to a mirror laid out like the hub (``<dir>/MERA-evaluation/<Name>/``
with a README.md ``configs:`` header and parquet files). When the mirror holds the dataset it is
used with no network call at all; otherwise the hub id is loaded as usual.

Media columns are read undecoded, and each media cell in ``inputs`` is replaced by a small
descriptor (kind, sha256, mime, source path, split, row). The descriptors are computed in one
``datasets.map`` pass that datasets caches by fingerprint, so hashes are computed once per
dataset version; the bytes stay in the memory-mapped source split until a backend asks for them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from lm_eval_patches.media.mime import sniff_mime
from lm_eval_patches.media.ref import MediaRef

log = logging.getLogger(__name__)

MEDIA_KINDS = {datasets.Image: "image", datasets.Audio: "audio", datasets.Video: "video"}
DESCRIPTOR_FEATURES = {
    "kind": datasets.Value("string"),
    "sha256": datasets.Value("string"),
    "mime": datasets.Value("string"),
    "path": datasets.Value("string"),
    "split": datasets.Value("string"),
    "row": datasets.Value("int64"),
}


class DatasetSourceError(RuntimeError):
    """A dataset or config that cannot be found, with what is available."""


def mirror_path(dataset_path: str, environ: dict[str, str] | None = None) -> Path | None:
    """The local mirror folder of ``dataset_path`` when MERA_DATA_DIR holds it."""
    env = os.environ if environ is None else environ
    root = env.get("MERA_DATA_DIR")
    if not root:
        return None
    candidate = Path(root).expanduser() / dataset_path
    return candidate if candidate.is_dir() else None


def load_source(task: str, dataset_path: str, config: str | None) -> datasets.DatasetDict:
    """Load a dataset (mirror first), with clear errors for unknown datasets and configs."""
    local = mirror_path(dataset_path)
    source = str(local) if local else dataset_path
    try:
        if local is not None:
            available = datasets.get_dataset_config_names(source)
            if config is not None and config not in available:
                raise DatasetSourceError(
                    f"task {task}: config {config!r} is not in {dataset_path} "
                    f"(mirror {local}); available: {', '.join(available)}"
                )
        return datasets.load_dataset(source, name=config)
    except DatasetSourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; say what to do
        where = f"the local mirror {local}" if local else "the Hugging Face Hub"
        hint = (
            "" if local else
            " Set MERA_DATA_DIR to a local mirror (mera-mm fixtures --out DIR writes one)."
        )
        raise DatasetSourceError(
            f"task {task}: cannot load dataset {dataset_path!r}"
            f"{f' config {config!r}' if config else ''} from {where}: {exc}.{hint}"
        ) from exc


def media_fields(features: datasets.Features) -> dict[str, str]:
    """``{field: kind}`` for media features inside ``inputs``."""
    inputs = features.get("inputs")
    if not isinstance(inputs, dict):
        return {}
    found = {}
    for name, feature in inputs.items():
        for cls, kind in MEDIA_KINDS.items():
            if isinstance(feature, cls):
                found[name] = kind
    return found


def _undecoded(features: datasets.Features, fields: dict[str, str]) -> datasets.Features:
    new = features.copy()
    for name, kind in fields.items():
        cls = {"image": datasets.Image, "audio": datasets.Audio, "video": datasets.Video}[kind]
        new["inputs"][name] = cls(decode=False)
    return new


def _described(features: datasets.Features, fields: dict[str, str]) -> datasets.Features:
    new = features.copy()
    for name in fields:
        new["inputs"][name] = dict(DESCRIPTOR_FEATURES)
    return new


def _cell_bytes(cell: Any) -> tuple[bytes | None, str | None]:
    if cell is None:
        return None, None
    if isinstance(cell, dict):
        data, path = cell.get("bytes"), cell.get("path")
        if data is None and path and os.path.exists(path):
            data = Path(path).read_bytes()
        return data, path
    return None, None


def _describe_batch(batch: dict, indices: list[int], *, split: str, fields: dict[str, str]):
    # A struct column arrives in a batch as one dict per row.
    for row, inputs in zip(indices, batch["inputs"], strict=True):
        for name, kind in fields.items():
            data, path = _cell_bytes(inputs.get(name))
            if data is None and not path:
                inputs[name] = None  # no media in this doc (optional slots)
                continue
            inputs[name] = {
                "kind": kind,
                "sha256": hashlib.sha256(data).hexdigest() if data else "",
                "mime": sniff_mime(data) if data else None,
                "path": path,
                "split": split,
                "row": row,
            }
    return batch


@dataclass
class LoadedDataset:
    """The described splits (what docs see) and the undecoded source splits (media bytes)."""

    described: datasets.DatasetDict
    source: datasets.DatasetDict
    media_fields: dict[str, str]


def load_described(task: str, dataset_path: str, config: str | None) -> LoadedDataset:
    """Load, keep media undecoded, and replace media cells by hashed descriptors."""
    raw = load_source(task, dataset_path, config)
    any_split = next(iter(raw.values()))
    fields = media_fields(any_split.features)
    if not fields:
        return LoadedDataset(raw, raw, {})
    source = raw.cast(_undecoded(any_split.features, fields))
    described = datasets.DatasetDict()
    for split, ds in source.items():
        described[split] = ds.map(
            _describe_batch,
            batched=True,
            batch_size=64,
            with_indices=True,
            fn_kwargs={"split": split, "fields": fields},
            features=_described(ds.features, fields),
            desc=f"{task}: hashing {split} media",
        )
    return LoadedDataset(described, source, fields)


class SourceCell:
    """Reads one media cell's bytes from the undecoded source split, on demand."""

    def __init__(self, split: datasets.Dataset, row: int, field: str) -> None:
        self._split = split
        self._row = row
        self._field = field

    def __call__(self) -> bytes:
        cell = self._split[self._row]["inputs"][self._field]
        data, path = _cell_bytes(cell)
        if not data:
            raise ValueError(f"no bytes stored (path {path!r})")
        return data


def media_ref(
    loaded: LoadedDataset, descriptor: dict | None, field: str, where: str
) -> MediaRef | None:
    """A MediaRef for a described cell (None when the doc has no such media)."""
    if descriptor is None:
        return None
    split = loaded.source[descriptor["split"]]
    return MediaRef(
        descriptor["kind"],
        descriptor["sha256"],
        descriptor["mime"],
        descriptor["path"],
        SourceCell(split, descriptor["row"], field),
        where,
    )
