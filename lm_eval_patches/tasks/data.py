"""Dataset loading for MERA tasks: local mirror first, lazy media, hashes computed once.

``MERA_DATA_DIR`` points to a mirror laid out like the hub (``<dir>/MERA-evaluation/<Name>/``
with a README.md ``configs:`` header and parquet files). When the mirror holds the dataset it is
used with no network call at all; otherwise the hub id is loaded as usual.

Media columns are read undecoded, and each media cell in ``inputs`` is replaced by a small
descriptor (kind, sha256, mime, source path, split, row). Hashes are computed once per run, in
one streaming pass over the media (plain reads, one batch at a time); afterwards the bytes stay
in the memory-mapped source split until a backend asks for them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
from datasets.table import InMemoryTable

from lm_eval_patches.errors import UserError
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


class DatasetSourceError(UserError, RuntimeError):
    """A dataset or config that cannot be found, with what is available."""


def mirror_path(dataset_path: str, environ: dict[str, str] | None = None) -> Path | None:
    """The local mirror folder of ``dataset_path`` when MERA_DATA_DIR holds it."""
    env = os.environ if environ is None else environ
    root = env.get("MERA_DATA_DIR")
    if not root:
        return None
    candidate = Path(root).expanduser() / dataset_path
    return candidate if candidate.is_dir() else None


def _mirror_cache_dir(folder: Path) -> str:
    """A datasets cache folder keyed by the mirror's files (path, size, mtime).

    datasets keys local folders by name and file patterns only, so two mirrors of one dataset
    (say, with and without private golds) would otherwise share a stale cache.
    """
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return str(Path(datasets.config.HF_DATASETS_CACHE) / "mera-mirrors" / digest.hexdigest()[:16])


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


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
        if local is not None:
            with _no_progress_bars():  # a local read takes no time; two bars per task is noise
                return datasets.load_dataset(
                    source, name=config, cache_dir=_mirror_cache_dir(local)
                )
        return datasets.load_dataset(source, name=config)
    except DatasetSourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; say what to do
        where = f"the local mirror {local}" if local else "the Hugging Face Hub"
        root = os.environ.get("MERA_DATA_DIR")
        if local:
            hint = ""
        elif root and not Path(root).expanduser().is_dir():
            hint = (
                f" The mirror MERA_DATA_DIR={root} does not exist; point MERA_DATA_DIR at a "
                "mirror folder (mera-mm fixtures --out DIR writes one)."
            )
        elif root:
            hint = (
                f" The mirror MERA_DATA_DIR={root} has no folder {dataset_path}; "
                "add the dataset there (mera-mm fixtures writes synthetic ones)."
            )
        else:
            hint = " Set MERA_DATA_DIR to a local mirror (mera-mm fixtures --out DIR writes one)."
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


def _with_features(ds: datasets.Dataset, features: datasets.Features) -> datasets.Dataset:
    """The same memory-mapped table under other features: only the decode flags differ, so
    nothing is copied (``Dataset.cast`` would rewrite every media byte)."""
    info = ds.info.copy()
    info.features = features
    return datasets.Dataset(
        ds.data, info=info, split=ds.split, indices_table=ds._indices, fingerprint=ds._fingerprint
    )


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


def _media_batches(ds: datasets.Dataset) -> Iterator[pa.StructArray]:
    """The ``inputs`` column batch by batch, read from the cache files with plain file reads.

    Reading through the memory map would leave every media page resident in this process for
    the whole run; streaming keeps one batch in memory at a time.
    """
    files = [f["filename"] for f in ds.cache_files]
    if files and ds._indices is None:
        for filename in files:
            with pa.OSFile(filename) as source:
                for batch in pa.ipc.open_stream(source):
                    yield batch.column("inputs")
    else:
        yield from ds.with_format(None).data.table.column("inputs").chunks


def _describe_split(ds: datasets.Dataset, split: str, fields: dict[str, str]) -> dict[str, list]:
    """``{field: [descriptor or None per row]}``, hashing each media cell once."""
    described: dict[str, list] = {name: [] for name in fields}
    row = 0
    for inputs in _media_batches(ds):
        for name, kind in fields.items():
            cells = inputs.field(name).to_pylist()
            for offset, cell in enumerate(cells):
                data, path = _cell_bytes(cell)
                described[name].append(
                    None
                    if data is None and not path
                    else {
                        "kind": kind,
                        "sha256": hashlib.sha256(data).hexdigest() if data else "",
                        "mime": sniff_mime(data) if data else None,
                        "path": path,
                        "split": split,
                        "row": row + offset,
                    }
                )
        row += len(inputs)
    return described


def _described_split(ds: datasets.Dataset, split: str, fields: dict[str, str]) -> datasets.Dataset:
    """The split with media cells swapped for descriptors, sharing all other columns."""
    descriptors = _describe_split(ds, split, fields)
    features = _described(ds.features, fields)
    inputs_type = features["inputs"]
    names = list(inputs_type)
    arrow_types = datasets.Features({"inputs": inputs_type}).arrow_schema.field("inputs").type
    table = ds.data.table
    chunks, start = [], 0
    for chunk in table.column("inputs").chunks:
        children = dict(zip([f.name for f in chunk.type], chunk.flatten(), strict=True))
        arrays = []
        for index, name in enumerate(names):
            if name in fields:
                rows = descriptors[name][start : start + len(chunk)]
                arrays.append(pa.array(rows, type=arrow_types.field(index).type))
            else:
                arrays.append(children[name])
        chunks.append(pa.StructArray.from_arrays(arrays, fields=list(arrow_types)))
        start += len(chunk)
    column = table.schema.get_field_index("inputs")
    new_table = table.set_column(column, "inputs", pa.chunked_array(chunks, type=arrow_types))
    info = ds.info.copy()
    info.features = features
    return datasets.Dataset(InMemoryTable(new_table), info=info, split=ds.split)


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
    source = datasets.DatasetDict(
        {split: _with_features(ds, _undecoded(ds.features, fields)) for split, ds in raw.items()}
    )
    described = datasets.DatasetDict(
        {split: _described_split(ds, split, fields) for split, ds in source.items()}
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
